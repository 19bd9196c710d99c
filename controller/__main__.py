"""`python -m controller` is `v2ghub`."""

import sys

from controller.cli import main

sys.exit(main())
