"""``python -m modelmeter`` runs the command line."""

import sys

from modelmeter.cli import main

sys.exit(main())
