"""`python -m sim_chargers --config PATH`: the simulated fleet (see sim_chargers.cli)."""

import sys

from sim_chargers.cli import main

sys.exit(main())
