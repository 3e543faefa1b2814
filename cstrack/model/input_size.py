"""The network input size, checked once: :func:`checked_size` turns a ``(width, height)`` pair into
an :class:`InputSize` after :func:`check_input_size`, and returns an :class:`InputSize` as it is.

Every function that takes a size calls :func:`checked_size`, so a size given directly is always
checked, while a size that travels down a path (settings -> ``build_detector`` -> optimised
detector -> inference graph -> ONNX export) is checked where it entered and nowhere after.
A leaf module (no torch): the settings record uses it too.
"""

from __future__ import annotations

from typing import NamedTuple

from cstrack.errors import ConfigError

STRIDE = 32  # the coarsest level; input sides must be multiples of it


class InputSize(NamedTuple):
    """A network input size whose sides are positive multiples of :data:`STRIDE` (a tuple ``(W, H)``)."""

    width: int
    height: int


def check_input_size(width: int, height: int) -> None:
    """Raise :class:`ConfigError` unless both sides are positive multiples of 32."""
    if width <= 0 or height <= 0 or width % STRIDE or height % STRIDE:
        raise ConfigError(f"input size {width}x{height} is not supported: width and height must be multiples of {STRIDE}")


def checked_size(size: tuple[int, int]) -> InputSize:
    """``size`` as an :class:`InputSize`: checked unless it already is one."""
    if isinstance(size, InputSize):
        return size
    width, height = size
    check_input_size(width, height)
    return InputSize(int(width), int(height))
