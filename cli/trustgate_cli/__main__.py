"""`python -m trustgate_cli` runs the CLI."""

import sys

from trustgate_cli.main import main

sys.exit(main())
