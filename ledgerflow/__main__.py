"""`python -m ledgerflow`: the `ledgerflow` command."""

from .cli.main import main

main()
