"""dcops.compliance."""
