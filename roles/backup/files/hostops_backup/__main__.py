"""python3 -m hostops_backup: the same as the hostops-backup command."""

import sys

from .cli import main

sys.exit(main())
