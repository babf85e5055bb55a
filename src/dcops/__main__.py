"""`python -m dcops` is the `dcops` command."""

from dcops.cli import main

main()
