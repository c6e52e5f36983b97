"""``python -m rwi`` is the ``rwi`` command."""

import sys

from rwi.cli import main

sys.exit(main())
