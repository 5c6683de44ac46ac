"""``python -m recorder.cli``: the rr command line."""

from recorder.cli import main

main()
