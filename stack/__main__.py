"""``python -m stack up|down|status``: the pipeline stack on this machine (:mod:`stack.local`)."""

import sys

from stack.local import main

sys.exit(main())
