"""Training, input encoding, curricula and evaluation."""
