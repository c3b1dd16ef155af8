"""``python -m vsite``: the same command line as the ``vsite`` script."""

from vsite.tools.cli import main

raise SystemExit(main())
