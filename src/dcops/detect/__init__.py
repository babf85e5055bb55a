"""dcops.detect."""
