"""Neural network architectures (Flax NNX) and the pure init/apply bridge."""
