"""``python -m mi_harness``: the same command line as ``mi-harness``."""
from .cli import main

main(prog_name="mi-harness")
