"""Where a result came from: git commit, package versions and hardware.

Every catalog row carries this (``catalog.schemas.RUNS``); benchmarks write it into their JSON.
Nothing here imports torch or Prefect: the GPU is found through ``nvidia-smi`` (or a torch that is
already imported), so collecting provenance stays cheap.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from cstrack.paths import REPO_ROOT

# Distributions whose versions change results or timings.
PACKAGES: tuple[str, ...] = (
    "cstrack", "numpy", "scipy", "torch", "opencv-python-headless", "onnxruntime", "pandas", "pyarrow",
    "trackeval", "motmetrics", "numba", "prefect", "dask", "distributed",
)


@dataclass(frozen=True)
class Provenance:
    """Git state, package versions and hardware of this process.

    ``git_commit``/``git_dirty`` are ``None`` outside a git work tree; ``gpu`` is ``None`` without
    an NVIDIA GPU.  ``cpu_cores`` counts the cores this process may run on (affinity).
    """

    git_commit: str | None
    git_dirty: bool | None
    packages: dict[str, str] = field(default_factory=dict)
    python: str = ""
    platform: str = ""
    cpu_model: str = ""
    cpu_cores: int = 0
    gpu: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def git_state(repo: str | Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """``(commit sha, dirty)`` of the work tree at ``repo``; ``(None, None)`` without git."""
    git = shutil.which("git")
    if git is None:
        return None, None
    try:
        sha = subprocess.run([git, "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run([git, "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return sha or None, bool(status.strip())


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing distributions are left out)."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpuinfo_value(key: str, cpuinfo: str | None = None) -> str | None:
    """The value of the first ``key : value`` line of ``cpuinfo`` (default: ``/proc/cpuinfo``),
    ``None`` where there is none or the file cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return None
    for line in text.splitlines():
        if line.lower().startswith(key):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo_value("model name") or platform.processor() or platform.machine()


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def simd_flags(cpuinfo: str | None = None) -> list[str]:
    """The CPU's vector extensions that decide convolution speed (:data:`SIMD_FLAGS`: AVX2, AVX-512,
    VNNI, AMX), in that order, from ``cpuinfo`` (default: ``/proc/cpuinfo``); ``[]`` where it
    cannot be read."""
    have = set((_cpuinfo_value("flags", cpuinfo) or "").split())
    return [f for f in SIMD_FLAGS if f in have]


def cpu_cores() -> int:
    """Cores available to this process (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def gpu_name() -> str | None:
    """Name(s) of the NVIDIA GPU(s), ``None`` when there is none."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        except Exception:  # a broken CUDA install must not break provenance
            pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return ", ".join(names) or None


@cache
def _static() -> tuple[dict[str, str], str, str, str, str | None]:
    return package_versions(), platform.python_version(), platform.platform(), cpu_model(), gpu_name()


def collect(repo: str | Path = REPO_ROOT) -> Provenance:
    """Provenance of this process (package and hardware facts are cached; git is re-read)."""
    commit, dirty = git_state(repo)
    packages, python, plat, cpu, gpu = _static()
    return Provenance(commit, dirty, dict(packages), python, plat, cpu, cpu_cores(), gpu)
