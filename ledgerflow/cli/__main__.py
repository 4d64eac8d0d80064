"""`python -m ledgerflow.cli`: the `ledgerflow` command."""

from .main import main

main()
