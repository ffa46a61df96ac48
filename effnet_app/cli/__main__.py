"""``python -m effnet_app.cli``: the command line without the window's routing."""

import sys

from . import main

sys.exit(main())
