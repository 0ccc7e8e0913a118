"""Runnable examples (python examples/NAME.py); examples.stochastic_pool is a CLI plugin."""
