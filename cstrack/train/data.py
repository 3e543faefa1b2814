"""Training data for the trainer: the shared JDE dataset (:mod:`cstrack.data.jde`) built from a
:class:`~cstrack.train.config.DataSection`, and the loader factory the trainer calls per epoch.

Item contract (what :func:`cstrack.data.jde.collate` batches, and what any dataset given to the
trainer must return):

- ``image``: float32 tensor [3, H, W], RGB in [0, 1], already at the network input size;
- ``labels``: float32 tensor [n, 6] rows ``(0, identity, cx, cy, w, h)``, box normalised to [0, 1]
  of the network input; identity 0 = "no identity", real identities >= 1 (spec Q12); n may be 0
  (spec Q16).

The collate stacks a batch into ``images [B, 3, H, W]`` and ``targets [T, 6]`` whose first column
is the image index in the batch (the loss' target format).

One adapter lives here rather than in ``cstrack.data.jde``: with ``zero_marked: no_identity`` the
gt rows of a MOT sequence with flag 0 (people the benchmark ignores, e.g. PETS09-S2L1's distant
walkers in frames 147-244) are kept as detection targets without identity instead of being dropped,
so that the detector is not taught that they are background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cstrack.data import jde
from cstrack.data.augment import AugmentConfig
from cstrack.data.mot import Sequence as MotSequence
from cstrack.errors import ConfigError
from cstrack.train.config import DataSection, SequenceSource

Batch = tuple[torch.Tensor, torch.Tensor]
# (epoch, batch size, rank, world size, workers, pin memory) -> the loader of that epoch
LoaderFactory = Callable[[int, int, int, int, int, bool], DataLoader]


@dataclass
class TrainData:
    """A training dataset plus what the trainer needs to know about it.

    ``make_loader`` builds the loader of an epoch (order, augmentation and DDP shard depending only
    on the seed and the epoch); ``None`` = the trainer's default (a seeded random sampler).
    """

    dataset: Dataset
    num_ids: int  # identity classes including class 0 ("no identity"): max identity + 1
    collate: Callable[[Sequence[Batch]], Batch] = jde.collate
    description: dict[str, Any] = field(default_factory=dict)
    make_loader: LoaderFactory | None = None


class TensorFrames(Dataset):
    """Fixed in-memory items (tests, synthetic smoke runs): ``images [N, 3, H, W]`` and one label
    tensor ``[n_i, 6]`` per image, in the item format above."""

    def __init__(self, images: torch.Tensor, labels: Sequence[torch.Tensor]) -> None:
        if len(images) != len(labels):
            raise ConfigError(f"TensorFrames: {len(images)} images but {len(labels)} label tensors")
        self.images = images.float()
        self.labels = [torch.as_tensor(lab, dtype=torch.float32).reshape(-1, 6) for lab in labels]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Batch:
        return self.images[i], self.labels[i]

    @property
    def num_ids(self) -> int:
        return max((int(lab[:, 1].max()) for lab in self.labels if len(lab)), default=0) + 1


def sequence_set(src: SequenceSource, zero_marked: str = "drop", visibility: float = 0.0) -> jde.ImageSet:
    """The :class:`~cstrack.data.jde.ImageSet` of one MOT sequence and frame range.

    ``zero_marked="no_identity"`` adds the gt rows with flag 0 (pedestrian class where classes
    exist) as boxes with raw identity -1, i.e. detection targets without identity.
    """
    base = jde.sequence_source(src.path, src.frames, visibility=visibility)
    if zero_marked == "drop":
        return base
    seq = MotSequence.open(src.path)
    gt = seq.gt()
    keep = (gt.conf == 0) & ((gt.cls < 0) | (gt.cls == 1))
    if visibility > 0:
        keep &= (gt.vis < 0) | (gt.vis >= visibility)
    zero = gt.select(keep)
    extra = zero.frame_slices()
    W, H = seq.info.im_width, seq.info.im_height
    first = src.frames[0] if src.frames else 1
    items = []
    for k, item in enumerate(base.items):
        rows = extra.get(first + k)
        if rows is None:
            items.append(item)
            continue
        x, y, w, h = zero.tlwh[rows].T
        add = np.stack([np.zeros(len(rows)), np.full(len(rows), -1.0), (x + w / 2) / W, (y + h / 2) / H, w / W, h / H], 1)
        items.append(jde.LabelledImage(item.image, np.concatenate([item.labels, add.astype(np.float32)])))
    return jde.ImageSet(base.name, tuple(items))


def build_train_data(data: DataSection, seed: int) -> TrainData:
    """The :class:`cstrack.data.jde.JDEDataset` of ``data``: one image set per MOT sequence (with its
    frame range), per JDE list file and per dataset of the named mixture (under ``data.root``), in
    that order; the dataset shifts identities into one numbering (spec §7.4 with the Q12 fix)."""
    aug = AugmentConfig(hsv_gains=data.hsv_gains, flip_lr=data.flip)
    cfg = jde.DataConfig(input_size=data.input_size, resize=data.resize, augment=data.augment, augment_config=aug, seed=seed)
    sets = [sequence_set(s, data.zero_marked, data.visibility) for s in data.sequences]
    sets += [jde.list_source(p) for p in data.label_lists]
    if data.mixture:
        sets += jde.registry_sources([data.mixture], data.root or "")
    ds = jde.JDEDataset(sets, cfg)

    def make_loader(epoch: int, batch: int, rank: int, world: int, workers: int, pin: bool) -> DataLoader:
        loader = jde.make_loader(ds, batch, shuffle=True, num_workers=workers, rank=rank, world_size=world, pin_memory=pin)
        jde.set_epoch(loader, epoch)
        return loader

    desc = {**ds.describe(), "sources": [{"path": s.path, "frames": list(s.frames) if s.frames else None} for s in data.sequences]
            + [{"list": p} for p in data.label_lists] + ([{"mixture": data.mixture, "root": data.root}] if data.mixture else []),
            "zero_marked": data.zero_marked}
    return TrainData(ds, ds.num_ids, jde.collate, desc, make_loader)
