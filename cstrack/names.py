"""The one check of the names a user gives (run names, tags, dataset names, catalog run ids, study
and sequence names): a letter or digit, then letters, digits, ``.``, ``_`` or ``-``, matched against
the WHOLE string (``re.fullmatch``: ``$`` alone lets a trailing newline through, which a YAML
``key: |`` block produces).  A leaf: it imports only :mod:`cstrack.errors`."""

from __future__ import annotations

import re

from cstrack.errors import ConfigError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 200  # catalog run ids and training run names: a path component well below NAME_MAX
RULE = "letters, digits, '.', '_', '-', starting with a letter or digit; no path separators or whitespace"


def is_name(value: object, max_len: int | None = None) -> bool:
    """True when ``value`` is a string that is a valid name in full (and at most ``max_len`` long)."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        return False
    return max_len is None or len(value) <= max_len


def check_name(value: object, what: str, max_len: int | None = None) -> str:
    """``value`` when :func:`is_name`; else :class:`ConfigError` ``invalid <what> <value!r> (<rule>)``."""
    if not is_name(value, max_len):
        limit = f", at most {max_len} characters" if max_len is not None else ""
        raise ConfigError(f"invalid {what} {value!r} ({RULE}{limit})")
    return str(value)
