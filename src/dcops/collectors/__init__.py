"""dcops.collectors."""
