"""dcops.inventory."""
