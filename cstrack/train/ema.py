"""Exponential moving average of the model weights (spec §8).

After the ``u``-th optimiser step every floating-point entry of the state dict (parameters and
BatchNorm statistics) becomes ``ema = d * ema + (1 - d) * model`` with
``d(u) = decay * (1 - exp(-u / tau))`` (decay 0.9999, tau 2000): the average follows the model
closely early on and slows down as training goes.  Integer entries (``num_batches_tracked``) are
copied.  The EMA weights are the ones saved and evaluated.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Generic, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


class ModelEMA(Generic[M]):
    """EMA of ``model`` (a deep copy in eval mode, never trained directly)."""

    def __init__(self, model: M, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def decay_at(self, updates: int) -> float:
        """``d(u) = decay * (1 - exp(-u / tau))``."""
        return self.decay * (1.0 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Fold the current weights of ``model`` in; returns the decay used."""
        self.updates += 1
        d = self.decay_at(self.updates)
        src = model.state_dict()
        for key, value in self.module.state_dict().items():
            new = src[key].detach()
            if value.dtype.is_floating_point:
                value.mul_(d).add_(new.to(value.dtype), alpha=1.0 - d)
            else:
                value.copy_(new)
        return d

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "state": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["state"], strict=True)
