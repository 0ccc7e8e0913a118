"""Run records, tables and plots."""
