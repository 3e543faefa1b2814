"""A bounded prefetch thread: produce the next items of an iterator while the caller computes.

Frame decoding (``cv2.imread``) and letterboxing release the GIL, so running them one or two
frames ahead in a background thread overlaps them with the network forward of the current frame
(the thread runs at a lower priority, see :data:`DEFAULT_NICE`).
Items come out in the source's order; an exception raised by the source (e.g. an unreadable
image, :class:`~cstrack.errors.DatasetError` naming the file) is re-raised in the consumer when
it reaches that position, after the items produced before it.

:func:`ordered_map` goes one step further for offline sequences: ``workers`` threads each compute
a whole item (read, letterbox and forward of one frame), results handed over in order.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from cstrack.errors import ConfigError
from cstrack.timing import DEFAULT_PREFETCH

T = TypeVar("T")
S = TypeVar("S")

_ITEM, _END, _ERROR = 0, 1, 2
_POLL_S = 0.05  # how often a blocked producer checks for close()
# The producer runs at a lower priority (a higher nice value, for its thread only) so that on a
# machine whose cores the network already fills it uses idle time (single-threaded stages, pool
# gaps) rather than preempting a compute thread; when it falls behind, the consumer blocks on the
# queue and the producer gets the cores, so the worst case is the sequential loop.
DEFAULT_NICE = 10


def _lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread); no-op elsewhere."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):  # not permitted / not supported: keep the default priority
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))


class Prefetcher(Generic[T]):
    """Iterate ``source`` in a daemon thread, keeping at most ``depth`` items ready.

    Use as an iterator, preferably in a ``with`` block (or call :meth:`close`) so that the thread
    stops when the consumer leaves early.  At most ``depth + 2`` items exist at once: the
    consumer's current item, ``depth`` queued ones and the one the producer is handing over.
    """

    def __init__(self, source: Iterable[T], depth: int = DEFAULT_PREFETCH, name: str = "prefetch", nice: int = DEFAULT_NICE) -> None:
        if depth < 1:
            raise ConfigError(f"prefetch depth: must be >= 1, got {depth}")
        self.depth = depth
        self.nice = nice
        self._source = iter(source)
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _put(self, msg: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(msg, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        _lower_priority(self.nice)
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put((_ERROR, exc))
            return
        self._put((_END, None))

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer (it finishes the item it is making) and wait for it."""
        self._finished = True
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch(source: Iterable[T], depth: int = DEFAULT_PREFETCH) -> Iterator[T]:
    """``source``'s items, produced ``depth`` ahead in a background thread.

    A generator: leaving the loop early (``break``, an exception, or dropping the iterator) stops
    and joins the thread.
    """
    with Prefetcher(source, depth) as items:
        yield from items


def ordered_map(fn: Callable[[S], T], items: Iterable[S], workers: int, ahead: int = 2) -> Iterator[T]:
    """``fn(item)`` for each of ``items``, computed in ``workers`` threads, yielded in the items'
    order.  At most ``workers + ahead`` calls are submitted and not yet consumed (each holds its
    result until then).  An exception raised by ``fn`` is re-raised when its item is reached, after
    the results before it.  A generator: leaving it early cancels the calls not yet started and
    waits for the running ones.  The threads run at normal priority (they do the main work).
    """
    if workers < 1 or ahead < 0:
        raise ConfigError(f"ordered_map: workers must be >= 1 and ahead >= 0, got {workers}, {ahead}")
    pending: deque[Future[T]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="frame-worker") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= workers + ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
