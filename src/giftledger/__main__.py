"""`python -m giftledger` runs the command line."""

from giftledger.cli.main import main

main()
