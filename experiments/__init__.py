"""Command-line experiments and registries."""
