"""Parameter and FLOP counts of a model (GFLOPs = 2 x MACs, counted by torch's FlopCounterMode:
convolutions incl. grouped/transposed, linear layers and matmuls; BN, activations, pooling and
softmax are not counted, as in spec §3)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from cstrack.model.network import CSTrackModel, check_input_size

_GROUP_PREFIXES = ("trunk", "ren", "emb_head", "detect")


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: CSTrackModel, size: tuple[int, int]) -> tuple[int, dict[str, int], dict[str, list[int]]]:
    """FLOPs of one ``[1, 3, H, W]`` forward at ``size = (W, H)``.

    Counted on a twin of ``model`` on the ``meta`` device (same config, no data, no compute), so
    it is fast and leaves ``model`` untouched.  Returns ``(total, per_group, output_shapes)`` with
    groups backbone / neck / ren / emb / detect.
    """
    w, h = size
    check_input_size(w, h)
    with torch.device("meta"):
        twin = CSTrackModel(model.config).eval()
        x = torch.zeros(1, 3, h, w)
    counter = FlopCounterMode(display=False, depth=None)  # type: ignore[arg-type]  # None = every depth
    with counter:
        emb, raw = twin(x)
    per_module = counter.get_flop_counts()
    name = type(model).__name__

    def module_total(path: str) -> int:
        return int(sum(per_module.get(f"{name}.{path}", {}).values()))

    nb = model.backbone_layers
    groups = {
        "backbone": sum(module_total(f"trunk.{i}") for i in range(nb)),
        "neck": sum(module_total(f"trunk.{i}") for i in range(nb, len(model.trunk))),
        "ren": sum(module_total(f"ren.{i}") for i in range(len(model.ren))),
        "emb": module_total("emb_head"),
        "detect": module_total("detect"),
    }
    total = counter.get_total_flops()
    shapes = {"emb": list(emb.shape)} | {f"P{3 + i}": list(r.shape) for i, r in enumerate(raw)}
    return int(total), groups, shapes


def model_report(model: CSTrackModel, size: tuple[int, int]) -> dict[str, Any]:
    """Params, GFLOPs (2 x MACs), group breakdown and output shapes, as a JSON-ready dict."""
    total, groups, shapes = count_flops(model, size)
    params = {k: sum(p.numel() for p in ps) for k, ps in model.parameter_groups().items()}
    n_decoded = sum(r[1] * r[2] * r[3] for r in (shapes[f"P{i}"] for i in (3, 4, 5)))
    shapes["decoded"] = [1, n_decoded, 5 + model.config.nc]
    return {
        "variant": model.config.variant,
        "size": list(size),
        "params": count_params(model),
        "gflops": total / 1e9,
        "gmacs": total / 2e9,
        "groups": {k: {"params": params[k], "gflops": groups[k] / 1e9} for k in groups},
        "outputs": shapes,
        "config": model.config.to_dict(),
    }
