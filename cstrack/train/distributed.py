"""Process-group setup for ``torchrun`` DDP (NCCL on CUDA, gloo on CPU) and device selection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from cstrack.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """``rank`` / ``world_size`` / ``local_rank`` of this process (1 process: 0 / 1 / 0)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` as set by ``torchrun``."""
        try:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError as exc:
            raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK: not integers ({exc})") from None


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is present, else ``cpu``; ``cuda`` -> ``cuda:<local_rank>``
    (the one rule, :func:`cstrack.model.device.resolve_device`)."""
    from cstrack.model.device import resolve_device as resolve

    return torch.device(resolve(spec, local_rank).spec)


def init_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group (``env://`` rendezvous from torchrun) when running several processes."""
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_gather_object(info: DistInfo, obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (a one-element list without DDP)."""
    if not (info.enabled and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
