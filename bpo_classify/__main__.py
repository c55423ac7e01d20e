"""`python -m bpo_classify` runs the command line."""

from .cli import main

main()
