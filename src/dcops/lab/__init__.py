"""dcops.lab."""
