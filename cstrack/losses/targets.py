"""Positive assignment of ground-truth boxes to anchors and grid cells (spec §7.1).

Targets format (what the data loader's collate produces): ``targets`` float32 [T, 6] rows
``(image index in batch, identity, cx, cy, w, h)`` with the box normalised to [0, 1] of the network
input.  Identity 0 means "no identity" (spec Q12: real identities are >= 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Spec §7.1: anchor_t (YOLOv5 hyp) and the neighbour-cell offset.
ANCHOR_T = 4.0
NEIGHBOUR_OFFSET = 0.5


@dataclass
class LevelTargets:
    """Positives of one pyramid level (P of them).

    - ``b``, ``a``, ``gj``, ``gi``: long [P] image, anchor, row, column
    - ``tbox``: float [P, 4] regression target (offset x, offset y, w, h) in grid units; the
      offset from the cell corner lies in [-0.5, 1.5]
    - ``anchors``: float [P, 2] the matched anchor (w, h) in grid units
    """

    b: torch.Tensor
    a: torch.Tensor
    gj: torch.Tensor
    gi: torch.Tensor
    tbox: torch.Tensor
    anchors: torch.Tensor

    def __len__(self) -> int:
        return int(self.b.shape[0])


def build_targets(targets: torch.Tensor, grid_shapes: list[tuple[int, int]], anchors_grid: torch.Tensor) -> list[LevelTargets]:
    """Assign ``targets [T, 6]`` to every level.

    Args:
        targets: [T, 6] (image, identity, cx, cy, w, h), box normalised to [0, 1].
        grid_shapes: ``(ny, nx)`` of each level's map.
        anchors_grid: [nl, na, 2] anchors in grid units of their level.

    A target-anchor pair is kept when ``max(w/aw, aw/w, h/ah, ah/h) < 4``.  Each kept pair goes to
    its centre cell and to the left/up neighbour when the centre lies in the left/upper half of
    its cell (and > 1 cell from the border), to the right/down neighbour symmetrically.
    """
    device = targets.device
    na = anchors_grid.shape[1]
    out: list[LevelTargets] = []
    for level, (ny, nx) in enumerate(grid_shapes):
        anchors = anchors_grid[level].to(device)
        gain = torch.tensor([nx, ny, nx, ny], dtype=targets.dtype, device=device)
        box = targets[:, 2:6] * gain  # [T, 4] grid units
        # [na, T] pairs
        ratio = box[None, :, 2:4] / anchors[:, None, :]
        keep = torch.maximum(ratio, 1.0 / ratio).amax(dim=2) < ANCHOR_T
        a_idx = torch.arange(na, device=device)[:, None].expand(na, targets.shape[0])[keep]
        t_idx = torch.arange(targets.shape[0], device=device)[None, :].expand(na, -1)[keep]
        gxy = box[t_idx, 0:2]
        gwh = box[t_idx, 2:4]
        inv = torch.tensor([nx, ny], dtype=targets.dtype, device=device) - gxy
        left_up = (gxy % 1.0 < NEIGHBOUR_OFFSET) & (gxy > 1.0)  # [P, 2] (x -> left, y -> up)
        right_down = (inv % 1.0 < NEIGHBOUR_OFFSET) & (inv > 1.0)
        sel = [torch.ones_like(t_idx, dtype=torch.bool), left_up[:, 0], left_up[:, 1], right_down[:, 0], right_down[:, 1]]
        offsets = torch.tensor(
            [[0.0, 0.0], [NEIGHBOUR_OFFSET, 0.0], [0.0, NEIGHBOUR_OFFSET], [-NEIGHBOUR_OFFSET, 0.0], [0.0, -NEIGHBOUR_OFFSET]],
            dtype=targets.dtype, device=device,
        )
        pos_t = torch.cat([t_idx[m] for m in sel])
        pos_a = torch.cat([a_idx[m] for m in sel])
        pos_xy = torch.cat([gxy[m] for m in sel])
        pos_wh = torch.cat([gwh[m] for m in sel])
        pos_off = torch.cat([offsets[k].expand(int(m.sum()), 2) for k, m in enumerate(sel)])
        cell = (pos_xy - pos_off).floor()
        gi = cell[:, 0].long().clamp(0, nx - 1)
        gj = cell[:, 1].long().clamp(0, ny - 1)
        tbox = torch.cat((pos_xy - torch.stack((gi, gj), dim=1).to(pos_xy.dtype), pos_wh), dim=1)
        out.append(
            LevelTargets(
                b=targets[pos_t, 0].long(), a=pos_a, gj=gj, gi=gi, tbox=tbox, anchors=anchors[pos_a],
            )
        )
    return out
