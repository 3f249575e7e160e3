import sys

from rfr.entrypoints.cli import main

sys.exit(main())
