"""SIGINT and SIGTERM, handled the same way by every command (issue 24).

- **SIGTERM** (what ``timeout``, ``docker stop``, Kubernetes and Prefect cancellation send) is
  turned into :class:`Terminated`, a ``KeyboardInterrupt``: whatever a command does with Ctrl-C
  (remove unfinished temporary files, keep what was already written) it does with SIGTERM too, and
  the CLI exits with :data:`EXIT_TERMINATED` (143 = 128 + 15) instead of 130.
- While a command can stop cleanly (``cstrack track``: :class:`GracefulStop`), the FIRST SIGINT or
  SIGTERM only asks it to stop: the frames tracked so far are written, then the command exits
  (0 after Ctrl-C, the usual end of a live run; 143 after SIGTERM).  A SECOND one raises
  :class:`Aborted`, which is not a ``KeyboardInterrupt``, so that no code that treats Ctrl-C as
  "stop and keep" swallows it: the command ends at once with 130 / 143, the unfinished files of
  the current source removed, earlier outputs kept.

Signal handlers can only be installed from the main thread; elsewhere these helpers do nothing.
A leaf: it imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (every cleanup runs)."""


class Aborted(BaseException):
    """A second SIGINT / SIGTERM while a command was stopping: end now."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"aborted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_status(exc: BaseException) -> int | None:
    """The exit status of an interruption (130, 143, or 128 + the signal of :class:`Aborted`);
    None for anything else."""
    if isinstance(exc, Aborted):
        return 128 + exc.signum
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return None


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` in the main thread (unless a handler other
    than the default one is already installed, e.g. an outer :func:`terminate_raises` or a
    :class:`GracefulStop`)."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class GracefulStop:
    """``with GracefulStop(stop):`` the first SIGINT or SIGTERM sets ``stop`` (and
    :attr:`signum`) and prints ``message`` on stderr; a second one raises :class:`Aborted`."""

    def __init__(self, stop: threading.Event,
                 message: str = "stopping: writing what was tracked so far (Ctrl-C again to abort)") -> None:
        self.stop, self.message = stop, message
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            raise Aborted(signum)
        self.signum = signum
        self.stop.set()
        print(f"\n{self.message}", file=sys.stderr, flush=True)

    def __enter__(self) -> GracefulStop:
        if _main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @property
    def exit_status(self) -> int:
        """0 when no signal came or the first was SIGINT; 143 after a SIGTERM."""
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else 0
