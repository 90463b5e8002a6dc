"""Regular-language tasks, one per file."""
