"""Which torch device runs a model: one rule for inference and training.

``auto`` (CUDA when present, else the CPU with a note), ``cpu``, ``cuda`` (the first visible GPU, or
the process's local rank under ``torchrun``) and ``cuda:N``.  Asking for CUDA on a machine without it
is a :class:`~cstrack.errors.ConfigError` naming the parameter ``device``, raised before any work.
Nothing here prints: the fallback note is returned (:attr:`Device.note`) for the caller to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cstrack.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(spec: object, param: str = "device") -> str:
    """``spec`` when it is one of :data:`DEVICE_CHOICES` (syntax only: no CUDA is probed)."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ConfigError(f"expected auto, cpu, cuda or cuda:N, got {spec!r}", param)
    return spec


@dataclass(frozen=True)
class Device:
    """A resolved device: ``spec`` is concrete (``cpu`` or ``cuda:N``), ``name`` the hardware's
    (the CPU model or the GPU's name), ``note`` a one-line remark for the user (``auto`` that fell
    back to the CPU) or ``None``."""

    spec: str
    name: str
    note: str | None = None

    @property
    def is_cuda(self) -> bool:
        return self.spec.startswith("cuda")

    def describe(self) -> str:
        """``device cpu (Intel Xeon ...)``: the settings line's part."""
        return f"device {self.spec} ({self.name})"


def resolve_device(spec: str, local_rank: int = 0, param: str = "device") -> Device:
    """The concrete device of ``spec`` (see the module docstring); ``cuda`` means ``cuda:<local_rank>``."""
    import torch

    check_device(spec, param)
    note = None
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        else:
            spec, note = "cpu", "auto: no CUDA device found, running on the CPU"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{spec!r} requested but CUDA is not available on this machine", param)
        spec = f"cuda:{local_rank}" if spec == "cuda" else spec
        index = int(spec.split(":", 1)[1])
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible",
                              param)
        return Device(spec, torch.cuda.get_device_name(index), note)
    from cstrack.provenance import cpu_model

    return Device("cpu", cpu_model(), note)


def describe_device(spec: str) -> Device:
    """The :class:`Device` of a concrete ``spec`` (``cpu`` or ``cuda:N``, already resolved), with
    the hardware's name as this process sees it."""
    if spec.startswith("cuda"):
        import torch

        return Device(spec, torch.cuda.get_device_name(int(spec.split(":", 1)[1])))
    from cstrack.provenance import cpu_model

    return Device("cpu", cpu_model())
