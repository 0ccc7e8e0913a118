"""cnn-jax."""
