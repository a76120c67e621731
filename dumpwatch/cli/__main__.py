"""``python -m dumpwatch.cli``: the ``dumpwatch`` command (the demo and the tests run it so)."""

from dumpwatch.cli.main import main

main()
