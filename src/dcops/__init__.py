"""dcops: IaC and SOC/NOC operations toolkit for a provincial e-government data centre."""

__version__ = "0.1.0"
