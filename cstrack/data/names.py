"""Dataset names as the catalog, the reports and the submission tools spell them: one place.

The MOTChallenge benchmarks are named as the server spells them (``MOT15``, ``MOT16``, ``MOT17``,
``MOT20``); the registry's lower-case names map onto them (``mot17`` -> ``MOT17``, ``mot17-mini``
-> ``MOT17-mini``).  Every other name (``pets09-s2l1``, ``synth``, a folder of clips) is kept as it
is.  A leaf module: imports nothing of the project.
"""

from __future__ import annotations

import re

BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")

_BENCHMARK = re.compile(r"^(?:2d)?(mot(?:15|16|17|20))(?=$|[-_ ./])(.*)$", re.IGNORECASE)


def canonical_dataset(name: str) -> str:
    """``name`` with a MOTChallenge benchmark prefix spelled as the server does (``mot17`` ->
    ``MOT17``, ``Mot20-val`` -> ``MOT20-val``); other names unchanged."""
    m = _BENCHMARK.match(name)
    return name if m is None else m.group(1).upper() + m.group(2)
