"""`make demo` (being built)."""
