"""The admin API and its fan-out to worker processes."""
