"""Entry point for python3 -m dln_plot DIR (run by `dln plot DIR`)."""

import sys

from .plot import main

sys.exit(main())
