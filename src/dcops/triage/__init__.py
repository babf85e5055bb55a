"""dcops.triage."""
