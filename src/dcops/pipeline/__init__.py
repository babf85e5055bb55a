"""dcops.pipeline."""
