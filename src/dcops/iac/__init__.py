"""dcops.iac: the Pulumi program run offline under mocks (plan, policies, topology)."""
