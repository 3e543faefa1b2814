"""The effective learning-rate / momentum / accumulation schedule of spec §8 (Q18).

Pure functions of the global iteration ``it`` (0-based count of batches since the start of
training) and the 0-based ``epoch``; nothing is stored, so resuming needs only ``it``.

- warm-up (``it < warmup_iters``, ``warmup_iters = max(round(warmup_epochs * nb), warmup_min_iters)``):
  ``lr = interp(it, [0, warmup_iters], [start, target])`` with ``start = warmup_bias_lr`` for the
  bias group and 0 otherwise, ``target = lr0 * step(epoch) * f(epoch)`` and the cosine factor
  ``f(e) = lrf + (1 - lrf) * (1 + cos(pi * e / epochs)) / 2``;
  ``momentum = interp(it, [0, warmup_iters], [warmup_momentum, momentum])``;
  ``accumulate = max(1, round(interp(it, [0, warmup_iters], [1, accumulate_max])))``.
- afterwards: ``lr = lr0 * step(epoch)`` for every group, ``step(e) = drop_factor if e >= drop_epoch
  else 1``; momentum and accumulation at their final values.

SOTS also builds a cosine ``LambdaLR`` that the per-iteration assignment overrides (Q18); only the
effective values are implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cstrack.train.config import OptimSection

GROUP_KINDS = ("no_decay", "decay", "bias")


@dataclass(frozen=True)
class StepValues:
    """Optimiser settings for one iteration: ``lr`` per group kind, momentum, accumulation."""

    lr: dict[str, float]
    momentum: float
    accumulate: int
    warmup: bool


def _interp(x: float, x1: float, y0: float, y1: float) -> float:
    if x1 <= 0:
        return y1
    t = min(max(x / x1, 0.0), 1.0)
    return y0 + (y1 - y0) * t


class Schedule:
    """Schedule for ``epochs`` epochs of ``iters_per_epoch`` batches.

    ``accumulate_max``: steps accumulated per optimiser step after warm-up (nominal batch / batch).
    """

    def __init__(self, optim: OptimSection, epochs: int, iters_per_epoch: int, accumulate_max: int) -> None:
        if iters_per_epoch <= 0:
            raise ValueError(f"iters_per_epoch must be > 0, got {iters_per_epoch}")
        self.optim = optim
        self.epochs = epochs
        self.iters_per_epoch = iters_per_epoch
        self.accumulate_max = max(1, int(accumulate_max))
        self.warmup_iters = max(round(optim.warmup_epochs * iters_per_epoch), optim.warmup_min_iters)

    def step_factor(self, epoch: int) -> float:
        return self.optim.drop_factor if epoch >= self.optim.drop_epoch else 1.0

    def cosine_factor(self, epoch: int) -> float:
        lrf = self.optim.lrf
        return lrf + (1 - lrf) * (1 + math.cos(math.pi * epoch / self.epochs)) / 2

    def values(self, it: int, epoch: int) -> StepValues:
        o = self.optim
        base = o.lr0 * self.step_factor(epoch)
        if it < self.warmup_iters:
            target = base * self.cosine_factor(epoch)
            lr = {k: _interp(it, self.warmup_iters, o.warmup_bias_lr if k == "bias" else 0.0, target) for k in GROUP_KINDS}
            mom = _interp(it, self.warmup_iters, o.warmup_momentum, o.momentum)
            acc = max(1, round(_interp(it, self.warmup_iters, 1.0, float(self.accumulate_max))))
            return StepValues(lr, mom, acc, True)
        return StepValues(dict.fromkeys(GROUP_KINDS, base), o.momentum, self.accumulate_max, False)
