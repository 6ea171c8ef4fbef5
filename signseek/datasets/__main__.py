"""`python -m signseek.datasets` runs the `signseek-data` command line."""

import sys

from .cli import main

sys.exit(main())
