"""`python -m watcher` runs the stormwatch command line."""

import sys

from watcher.cli import main

sys.exit(main())
