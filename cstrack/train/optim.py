"""Optimiser parameter groups (spec §8) and the optimiser itself (SGD nesterov, or AdamW).

Groups, by kind:

- ``decay``: every parameter named ``*.weight`` except BatchNorm weights -- convolutions,
  transposed convolutions, Conv1d, Linear and the SAAN LayerNorm weights -- get weight decay;
- ``bias``: every ``*.bias`` (no decay; warm-up starts at ``warmup_bias_lr``);
- ``no_decay``: BatchNorm weights, REN lambdas, the ID classifier and any other parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from cstrack.train.config import OptimSection
from cstrack.train.schedule import GROUP_KINDS, StepValues


def group_parameters(
    modules: Iterable[tuple[str, nn.Module]], no_decay_modules: Iterable[nn.Module] = ()
) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """``{kind: [(qualified name, parameter)]}`` for ``modules`` given as ``(prefix, module)``.

    ``no_decay_modules``: modules whose weights never decay (the ID classifier, spec §7.4).
    """
    exempt = {id(m) for m in no_decay_modules}
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {k: [] for k in GROUP_KINDS}
    seen: set[int] = set()
    for prefix, root in modules:
        for mod_name, mod in root.named_modules():
            for p_name, p in mod.named_parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                name = ".".join(x for x in (prefix, mod_name, p_name) if x)
                if p_name == "bias":
                    kind = "bias"
                elif p_name == "weight" and not isinstance(mod, nn.modules.batchnorm._BatchNorm) and id(mod) not in exempt:
                    kind = "decay"
                else:
                    kind = "no_decay"
                groups[kind].append((name, p))
    return groups


def build_optimizer(
    groups: dict[str, list[tuple[str, nn.Parameter]]], optim: OptimSection, decay_scale: float = 1.0
) -> torch.optim.Optimizer:
    """The optimiser over ``groups`` (one torch param group per kind, tagged ``group["kind"]``).

    ``decay_scale``: ``total batch * accumulate / nominal batch`` (spec §8: 8 * 8 / 64 = 1).
    """
    wd = optim.weight_decay * decay_scale
    param_groups = [
        {"params": [p for _, p in groups[k]], "kind": k, "weight_decay": wd if k == "decay" else 0.0}
        for k in GROUP_KINDS
    ]
    if optim.name == "sgd":
        return torch.optim.SGD(param_groups, lr=optim.lr0, momentum=optim.momentum, nesterov=optim.nesterov)
    return torch.optim.AdamW(param_groups, lr=optim.lr0, betas=(optim.momentum, optim.adam_beta2))


def apply_step_values(optimizer: torch.optim.Optimizer, values: StepValues) -> None:
    """Set lr and momentum (AdamW: beta1) of every param group for the coming iteration."""
    for g in optimizer.param_groups:
        g["lr"] = values.lr[g["kind"]]
        if "momentum" in g:
            g["momentum"] = values.momentum
        if "betas" in g:
            g["betas"] = (values.momentum, g["betas"][1])
