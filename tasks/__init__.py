"""Pure-functional task samplers: formal-language tasks as jnp batches."""
