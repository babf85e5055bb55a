"""dcops.alerts."""
