"""Training data: a torch Dataset over JDE label lists and MOT sequences, mixtures, collate, sampler.

Sources (:class:`ImageSet`, one per dataset) come from

- :func:`list_source`: a list file of image paths (relative lines resolve against the list file's
  folder) whose label files follow the JDE rule (:func:`cstrack.data.convert.label_path_for`);
- :func:`sequence_source`: a MOT sequence folder and a frame range, labels taken from its gt
  (the boxes MOT counts: flag 1, class 1 where classes exist, optional visibility threshold);
- :func:`registry_sources`: datasets or mixtures (``S``, ``M``, ``B``) prepared under a root by
  ``cstrack data prepare``.

Identities (spec §7.4 with the Q12 fix): raw identities are ``-1`` (none) or ``0..max_id`` within
a dataset.  In a :class:`JDEDataset` over sets ``0..K-1`` the identity of set ``k`` becomes
``raw + 1 + offset_k`` with ``offset_k = sum_{j<k} (max_id_j + 1)``, and ``-1`` becomes ``0`` =
"no identity" (ignored by the ID loss).  ``num_ids = 1 + sum_k (max_id_k + 1)`` is the number of
identity classes including 0 (the classifier's ``nID``).

Items: ``dataset[i] -> (image float32 [3, H, W] RGB in [0, 1], targets float32 [n, 6])`` with rows
``(0, identity, cx, cy, w, h)``, box normalised to the network input ``(W, H)``; ``n`` may be 0.
:func:`collate` makes ``(images [B, 3, H, W], targets [T, 6])`` with column 0 = image index in the
batch: the target format of ``cstrack.losses``.

Determinism: the augmentation of item ``i`` in epoch ``e`` draws from a generator seeded with
``(seed, e, i)``, so results do not depend on worker processes or on the order items are loaded.
:class:`EpochSampler` yields ``(epoch, index)`` keys that carry the epoch into the workers, shuffles
with ``(seed, epoch)`` and shards for DDP (``rank``/``world_size``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cstrack.data.augment import AugmentConfig, ResizeMode, prepare_training_image
from cstrack.data.convert import label_path_for
from cstrack.data.images import read_image
from cstrack.data.mot import Sequence as MotSequence
from cstrack.data.mot import counted_gt
from cstrack.data.registry import Registry, load_registry
from cstrack.errors import ConfigError, DatasetError

# Spec §8: SOTS trains the "B" setting on CrowdHuman train + val.
EXTRA_TRAIN_SPLITS: Mapping[str, tuple[str, ...]] = {"crowdhuman": ("val",)}


# --------------------------------------------------------------------------------------------
# sources


@dataclass(frozen=True)
class LabelledImage:
    """An image and its boxes: ``labels`` float32 [n, 6] = (class, raw identity, cx, cy, w, h),
    box normalised to the image size; raw identity ``-1`` = none, else ``0..max_id``."""

    image: Path
    labels: np.ndarray


@dataclass(frozen=True)
class ImageSet:
    """The images of one dataset (identities share one numbering)."""

    name: str
    items: tuple[LabelledImage, ...]
    max_id: int = field(init=False)

    def __post_init__(self) -> None:
        top = max((int(it.labels[:, 1].max()) for it in self.items if len(it.labels)), default=-1)
        object.__setattr__(self, "max_id", top)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def boxes(self) -> int:
        return sum(len(it.labels) for it in self.items)


def read_label_file(path: str | Path) -> np.ndarray:
    """Parse a JDE label file into float32 [n, 6]; an empty file gives [0, 6] (spec Q16).

    Each line is ``class identity cx cy w h``; class and identity integers (identity >= -1), the
    box finite with ``w, h > 0``.  A bad line raises :class:`DatasetError` with path and line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError("label file not found", p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"unreadable label file ({exc})", p) from None
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DatasetError(f"malformed label line: {len(parts)} values, need 6: {line[:80]!r}", p, line_no)
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            raise DatasetError(f"malformed label line: non-numeric value in {line[:80]!r}", p, line_no) from None
        cls, ident, _, _, w, h = vals
        if not all(np.isfinite(vals)):
            raise DatasetError("non-finite value in label line", p, line_no)
        if cls != int(cls) or ident != int(ident) or ident < -1:
            raise DatasetError(f"class/identity must be integers, identity >= -1: {line[:80]!r}", p, line_no)
        if w <= 0 or h <= 0:
            raise DatasetError(f"non-positive box size w={w} h={h}", p, line_no)
        rows.append(vals)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 6)


def list_source(list_file: str | Path, name: str | None = None) -> ImageSet:
    """An :class:`ImageSet` from a list file; a missing image names the list file and line."""
    lf = Path(list_file)
    if not lf.is_file():
        raise DatasetError("list file not found", lf)
    items = []
    for line_no, line in enumerate(lf.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        img = Path(line) if Path(line).is_absolute() else lf.parent / line
        if not img.is_file():
            raise DatasetError(f"image not found: {img}", lf, line_no)
        items.append(LabelledImage(img, read_label_file(label_path_for(img))))
    return ImageSet(name or lf.stem, tuple(items))


def sequence_source(
    seq_dir: str | Path,
    frames: tuple[int, int] | None = None,
    *,
    visibility: float = 0.0,
    name: str | None = None,
) -> ImageSet:
    """Frames ``first..last`` (1-based, inclusive; default all) of a MOT sequence, labels from its gt.

    Kept boxes: :func:`cstrack.data.mot.counted_gt` with ``visibility``.  Raw identities are the gt
    ids of the boxes kept anywhere in the sequence, renumbered ``0..`` in increasing order.
    """
    seq = MotSequence.open(seq_dir)
    n = seq.info.seq_length
    first, last = frames if frames is not None else (1, n)
    if not 1 <= first <= last <= n:
        raise ConfigError(f"frames: need 1 <= first <= last <= {n} for {seq.root}, got {first}:{last}")
    gt = counted_gt(seq.gt(), visibility)
    raw_ids = np.unique(gt.id)
    remap = {int(r): k for k, r in enumerate(raw_ids)}
    W, H = seq.info.im_width, seq.info.im_height
    by_frame = gt.frame_slices()
    items = []
    for f in range(first, last + 1):
        img = seq.image_path(f)
        if not img.is_file():
            raise DatasetError(f"image of frame {f} not found (convert the video first)", img)
        rows = by_frame.get(f, np.zeros(0, np.int64))
        x, y, w, h = gt.tlwh[rows].T
        labels = np.stack([np.zeros(len(rows)), [remap[int(i)] for i in gt.id[rows]],
                           (x + w / 2) / W, (y + h / 2) / H, w / W, h / H], 1).astype(np.float32)
        items.append(LabelledImage(img, labels.reshape(-1, 6)))
    return ImageSet(name or f"{seq.name}[{first}:{last}]", tuple(items))


def registry_sources(
    names: Iterable[str],
    root: str | Path,
    split: str = "train",
    *,
    registry: Registry | None = None,
) -> list[ImageSet]:
    """One :class:`ImageSet` per dataset of ``names`` (datasets or mixtures, in mixture order) from
    the list files ``root/<dataset>/<split>.txt`` written by ``cstrack data prepare``.  With
    ``split="train"`` CrowdHuman also contributes its ``val`` list (spec §8)."""
    reg = registry or load_registry()
    sets = []
    for ds in reg.expand(names):
        d = Path(root) / ds
        splits = (split, *EXTRA_TRAIN_SPLITS.get(ds, ())) if split == "train" else (split,)
        lists = [d / f"{s}.txt" for s in splits]
        if not lists[0].is_file():
            raise DatasetError(f"no {split} list for {ds}: run `cstrack data prepare {ds} --root {root}`", lists[0])
        items = tuple(it for lf in lists if lf.is_file() for it in list_source(lf).items)
        sets.append(ImageSet(ds, items))
    return sets


# --------------------------------------------------------------------------------------------
# the dataset


@dataclass(frozen=True)
class DataConfig:
    """How images become network inputs."""

    input_size: tuple[int, int] = (1088, 608)  # spec §1/§8: (W, H), multiples of 32
    resize: ResizeMode = "stretch"  # spec §8 (SOTS parity); "letterbox" is the Q11 option
    augment: bool = True  # spec §8: affine filter, HSV, flip
    augment_config: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 2020  # spec §8: SOTS seeds 2020

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in size):
            raise ConfigError(f"input_size: (W, H), positive multiples of 32 expected, got {self.input_size!r}")
        object.__setattr__(self, "input_size", (int(size[0]), int(size[1])))
        if self.resize not in ("stretch", "letterbox"):
            raise ConfigError(f"resize: must be 'stretch' or 'letterbox', got {self.resize!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {self.seed!r}")


class JDEDataset(Dataset):
    """Images of several :class:`ImageSet` s with identities shifted into one numbering (module doc)."""

    def __init__(self, sets: Sequence[ImageSet], config: DataConfig | None = None) -> None:
        if not sets:
            raise ConfigError("JDEDataset: no image set given")
        self.config = config or DataConfig()
        self.sets = tuple(sets)
        offsets, total = [], 0
        for s in self.sets:
            offsets.append(total)
            total += s.max_id + 1
        self.offsets = tuple(offsets)
        self.num_ids = total + 1  # classes of the ID classifier, 0 = "no identity" included
        self.index = [(k, j) for k, s in enumerate(self.sets) for j in range(len(s))]
        if not self.index:
            raise ConfigError("JDEDataset: the image sets hold no image")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for integer keys (the sampler's ``(epoch, index)`` keys carry their own)."""
        self.epoch = int(epoch)

    def image_path(self, i: int) -> Path:
        k, j = self.index[i]
        return self.sets[k].items[j].image

    def identities(self, i: int) -> np.ndarray:
        """Shifted identities (int64 [n]) of item ``i`` before augmentation (0 = none)."""
        k, j = self.index[i]
        raw = self.sets[k].items[j].labels[:, 1].astype(np.int64)
        return np.where(raw < 0, 0, raw + 1 + self.offsets[k])

    def describe(self) -> dict[str, Any]:
        """Provenance: the sets, their sizes and identity offsets, and the preprocessing."""
        return {
            "sets": [{"name": s.name, "images": len(s), "boxes": s.boxes, "max_id": s.max_id, "id_offset": o}
                     for s, o in zip(self.sets, self.offsets, strict=True)],
            "images": len(self), "num_ids": self.num_ids, "input_size": list(self.config.input_size),
            "resize": self.config.resize, "augment": self.config.augment, "seed": self.config.seed,
        }

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = (self.epoch, key) if isinstance(key, int | np.integer) else key
        k, j = self.index[int(i)]
        item = self.sets[k].items[j]
        img = read_image(item.image)
        h0, w0 = img.shape[:2]
        lab = item.labels
        xyxy = np.stack([(lab[:, 2] - lab[:, 4] / 2) * w0, (lab[:, 3] - lab[:, 5] / 2) * h0,
                         (lab[:, 2] + lab[:, 4] / 2) * w0, (lab[:, 3] + lab[:, 5] / 2) * h0], 1)
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, int(epoch), int(i)]) if cfg.augment else None
        net, boxes, kept = prepare_training_image(
            img, xyxy, cfg.input_size, resize=cfg.resize, augment=cfg.augment, cfg=cfg.augment_config, rng=rng
        )
        W, H = cfg.input_size
        ids = self.identities(int(i))[kept]
        targets = np.zeros((len(kept), 6), np.float32)
        targets[:, 1] = ids
        targets[:, 2] = (boxes[:, 0] + boxes[:, 2]) / (2 * W)
        targets[:, 3] = (boxes[:, 1] + boxes[:, 3]) / (2 * H)
        targets[:, 4] = (boxes[:, 2] - boxes[:, 0]) / W
        targets[:, 5] = (boxes[:, 3] - boxes[:, 1]) / H
        rgb = np.ascontiguousarray(net[:, :, ::-1].transpose(2, 0, 1))
        return torch.from_numpy(rgb).float().div_(255.0), torch.from_numpy(targets)

    @classmethod
    def from_lists(cls, list_files: Sequence[str | Path], config: DataConfig | None = None) -> JDEDataset:
        """One set per list file, in order."""
        return cls([list_source(p) for p in list_files], config)

    @classmethod
    def from_registry(
        cls, names: Iterable[str], root: str | Path, split: str = "train", config: DataConfig | None = None,
        registry: Registry | None = None,
    ) -> JDEDataset:
        """Datasets or mixtures (``S``, ``M``, ``B``) prepared under ``root``."""
        return cls(registry_sources(names, root, split, registry=registry), config)


# --------------------------------------------------------------------------------------------
# batching


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image [3, H, W], targets [n_i, 6])] -> (images [B, 3, H, W], targets [sum n_i, 6])``,
    targets' column 0 set to the image's index in the batch."""
    images = torch.stack([im for im, _ in batch])
    rows = []
    for b, (_, t) in enumerate(batch):
        t = t.reshape(-1, 6).clone()
        t[:, 0] = b
        rows.append(t)
    return images, torch.cat(rows) if rows else torch.zeros((0, 6))


def worker_init_fn(worker_id: int) -> None:
    """Seed Python/NumPy/torch in a DataLoader worker from its torch seed; one OpenCV thread.

    The dataset's own augmentation does not depend on these (it seeds per item); this keeps any
    other randomness reproducible and stops workers oversubscribing the cores.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    cv2.setNumThreads(1)


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` keys: a permutation seeded by ``(seed, epoch)`` (or 0..n-1), padded
    by wrapping (or truncated with ``drop_last``) to a multiple of ``world_size`` and sharded by
    ``rank``.  Call :meth:`set_epoch` before each epoch."""

    def __init__(
        self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if n <= 0:
            raise ConfigError(f"EpochSampler: n must be positive, got {n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"EpochSampler: need 0 <= rank < world_size, got rank={rank} world_size={world_size}")
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _per_rank(self) -> int:
        return self.n // self.world_size if self.drop_last else -(-self.n // self.world_size)

    def __len__(self) -> int:
        return self._per_rank()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self._per_rank() * self.world_size
        order = np.resize(order, total) if total > self.n else order[:total]
        return iter([(self.epoch, int(i)) for i in order[self.rank :: self.world_size]])


def make_loader(
    dataset: JDEDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    mp_context: str | None = "forkserver",
) -> DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochSampler` (seed = the dataset's seed) and
    :func:`collate`.  Call :func:`set_epoch` (or ``loader.sampler.set_epoch``) before each epoch.

    Workers start from a fork server by default: forking a process whose OpenCV/torch thread pools
    have run (as the trainer's has) can deadlock the children in their first OpenCV call.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ConfigError(f"num_workers: must be >= 0, got {num_workers}")
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=dataset.config.seed, rank=rank,
                           world_size=world_size, drop_last=drop_last)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate,
        worker_init_fn=worker_init_fn if num_workers > 0 else None, drop_last=drop_last,
        pin_memory=pin_memory, persistent_workers=persistent_workers and num_workers > 0,
        multiprocessing_context=mp_context if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(dataset.config.seed),
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of a loader made by :func:`make_loader` (sampler and dataset)."""
    if isinstance(loader.sampler, EpochSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, JDEDataset):
        loader.dataset.set_epoch(epoch)
