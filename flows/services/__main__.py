"""``python -m flows.services up|down|status``: the pipeline stack on this machine (:mod:`flows.stack`)."""

import sys

from flows.stack import main

sys.exit(main())
