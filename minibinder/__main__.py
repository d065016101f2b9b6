"""`python -m minibinder`: the same command line as `minibinder`."""

from .cli import main

main(prog_name="minibinder")
