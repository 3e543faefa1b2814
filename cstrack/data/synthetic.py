"""Synthetic MOT sequences: pedestrian-like sprites walking over a textured background.

Each object is an upright figure (head disc, elliptic torso with stripes, legs) in its own colours,
so appearance identifies it.  Objects walk mostly horizontally in both directions and bounce off
the image borders, so they cross, occlude each other (drawn back to front by the y of their feet)
and leave the image partly.  Ground truth is written in the 9-column MOT17 layout
``frame, id, x, y, w, h, 1, 1, visibility`` where visibility is the fraction of the figure's own
pixels that are visible (not covered by a figure in front of it and inside the image).  Rows whose
box lies completely outside the image are not written.  ``det/det.txt`` holds noisy detections
drawn from the gt (for the public-detection mode).

Everything is a pure function of the config: the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cstrack.data.mot import SeqInfo, write_seqinfo
from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_write_text

_MAX_OBJECTS = 250  # the label map is uint8 with 255 reserved for background


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.  Sizes are in pixels; object height is a fraction of the image height."""

    sequences: int = 2
    length: int = 100
    width: int = 640
    height: int = 480
    objects: int = 8
    frame_rate: float = 25.0
    seed: int = 0
    prefix: str = "SYNTH"
    min_height: float = 0.18  # object height range, fraction of the image height
    max_height: float = 0.42
    max_speed: float = 3.0  # horizontal speed range (px/frame at 640 px width, scaled with width)
    det_miss_rate: float = 0.1  # fraction of visible gt boxes missing from det.txt
    det_min_visibility: float = 0.3  # boxes less visible than this are never detected
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for name in ("sequences", "length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.width < 64 or self.height < 64:
            raise ConfigError(f"width/height: must be >= 64, got {self.width}x{self.height}")
        if not 0 <= self.objects <= _MAX_OBJECTS:
            raise ConfigError(f"objects: must be in 0..{_MAX_OBJECTS}, got {self.objects}")
        if self.frame_rate <= 0:
            raise ConfigError(f"frame_rate: must be positive, got {self.frame_rate}")
        if self.seed < 0:
            raise ConfigError(f"seed: must be >= 0, got {self.seed}")
        if not 0 < self.min_height <= self.max_height < 1:
            raise ConfigError(f"min_height/max_height: need 0 < min <= max < 1, got {self.min_height}, {self.max_height}")
        if self.max_speed <= 0:
            raise ConfigError(f"max_speed: must be positive, got {self.max_speed}")
        if not 0 <= self.det_miss_rate <= 1 or not 0 <= self.det_min_visibility <= 1:
            raise ConfigError("det_miss_rate/det_min_visibility: must be in [0, 1]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality: must be in 1..100, got {self.jpeg_quality}")
        if not self.prefix or not self.prefix.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"prefix: letters, digits, '-' and '_' only, got {self.prefix!r}")

    def sequence_name(self, index: int) -> str:
        return f"{self.prefix}-{index + 1:02d}"


@dataclass
class _Sprite:
    patch: np.ndarray  # uint8 [h, w, 3] BGR
    mask: np.ndarray  # bool [h, w]
    x: float  # top-left, float position
    y: float
    vx: float
    vy: float

    @property
    def w(self) -> int:
        return self.patch.shape[1]

    @property
    def h(self) -> int:
        return self.patch.shape[0]


def _hsv_to_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    px = np.array([[[int(h) % 180, int(s), int(v)]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _make_sprite(rng: np.random.Generator, k: int, n: int, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """A figure of its own colours: hue spread over the objects, stripes of a per-object period."""
    h = max(16, round(cfg.height * rng.uniform(cfg.min_height, cfg.max_height)))
    w = max(6, round(h * rng.uniform(0.32, 0.45)))
    patch = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    hue = (180.0 * k / max(n, 1) + rng.uniform(0, 180.0 / max(n, 1))) % 180
    torso = _hsv_to_bgr(hue, rng.uniform(150, 255), rng.uniform(150, 255))
    stripe = _hsv_to_bgr(hue + 90, rng.uniform(100, 255), rng.uniform(60, 200))
    legs = _hsv_to_bgr(rng.uniform(0, 180), rng.uniform(40, 200), rng.uniform(40, 160))
    skin = _hsv_to_bgr(rng.uniform(5, 20), rng.uniform(60, 140), rng.uniform(120, 230))
    head_r = max(2, round(min(w * 0.3, h * 0.09)))
    head_c = (w // 2, head_r)
    torso_top, torso_bot = 2 * head_r, int(h * 0.6)
    legs_top = int(h * 0.55)
    # legs: two rectangles
    leg_w = max(1, w // 3)
    for x0 in (w // 2 - leg_w - 1, w // 2 + 1):
        cv2.rectangle(patch, (x0, legs_top), (x0 + leg_w - 1, h - 1), legs, -1)
        cv2.rectangle(mask, (x0, legs_top), (x0 + leg_w - 1, h - 1), 1, -1)
    # torso: ellipse with horizontal stripes of a per-object period
    centre = (w // 2, (torso_top + torso_bot) // 2)
    axes = (max(1, w // 2 - 1), max(1, (torso_bot - torso_top) // 2))
    torso_mask = np.zeros_like(mask)
    cv2.ellipse(torso_mask, centre, axes, 0, 0, 360, 1, -1)
    period = int(rng.integers(3, 9))
    rows = (np.arange(h)[:, None] // period) % 2 == 0
    colour = np.where(rows[..., None], np.array(torso, dtype=np.uint8), np.array(stripe, dtype=np.uint8))
    sel = torso_mask.astype(bool)
    patch[sel] = np.broadcast_to(colour, (h, w, 3))[sel]
    mask |= torso_mask
    cv2.circle(patch, head_c, head_r, skin, -1)
    cv2.circle(mask, head_c, head_r, 1, -1)
    return patch, mask.astype(bool)


def _background(rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    W, H = cfg.width, cfg.height
    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    top = rng.uniform(60, 140, 3).astype(np.float32)
    bottom = rng.uniform(90, 190, 3).astype(np.float32)
    bg = np.broadcast_to(top * (1 - yy) + bottom * yy, (H, W, 3)).copy()
    for _ in range(int(rng.integers(8, 16))):  # "buildings" and "paving" blocks
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        x1, y1 = x0 + int(rng.integers(W // 20, W // 4)), y0 + int(rng.integers(H // 20, H // 4))
        cv2.rectangle(bg, (x0, y0), (x1, y1), tuple(float(c) for c in rng.uniform(40, 220, 3)), -1)
    bg += rng.normal(0, 6, (H, W, 3)).astype(np.float32)
    bg = cv2.GaussianBlur(bg, (0, 0), 1.2)
    return np.clip(bg, 0, 255).astype(np.uint8)


def _init_sprites(rng: np.random.Generator, cfg: SynthConfig) -> list[_Sprite]:
    W, H = cfg.width, cfg.height
    speed_scale = W / 640.0
    sprites = []
    for k in range(cfg.objects):
        patch, mask = _make_sprite(rng, k, cfg.objects, cfg)
        h, w = mask.shape
        direction = 1.0 if k % 2 == 0 else -1.0  # half walk right, half left: they cross
        vx = direction * rng.uniform(0.3, 1.0) * cfg.max_speed * speed_scale
        vy = rng.uniform(-0.25, 0.25) * cfg.max_speed * speed_scale
        # feet in the lower two thirds of the image, so that figures overlap vertically
        foot = rng.uniform(0.45 * H, 0.98 * H)
        x = rng.uniform(-0.25 * w, W - 0.75 * w)
        sprites.append(_Sprite(patch, mask, float(x), float(max(foot - h, -0.2 * h)), float(vx), float(vy)))
    return sprites


def _step(s: _Sprite, width: int, height: int) -> None:
    s.x += s.vx
    s.y += s.vy
    # bounce when more than half of the figure is out (keeps partial exits / truncation)
    if s.x < -s.w / 2 or s.x > width - s.w / 2:
        s.vx = -s.vx
        s.x = min(max(s.x, -s.w / 2), width - s.w / 2)
    if s.y < 0.2 * height - s.h or s.y > height - s.h / 2:
        s.vy = -s.vy
        s.y = min(max(s.y, 0.2 * height - s.h), height - s.h / 2)


def render_sequence(cfg: SynthConfig, index: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (uint8 BGR [H, W, 3]) and gt rows (float64 [N, 9] MOT17 layout) of sequence ``index``."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index]))
    W, H = cfg.width, cfg.height
    bg = _background(rng, cfg)
    sprites = _init_sprites(rng, cfg)
    frames: list[np.ndarray] = []
    rows: list[tuple[float, ...]] = []
    labels = np.empty((H, W), np.uint8)
    for f in range(1, cfg.length + 1):
        img = bg.copy()
        labels.fill(255)
        placed = []
        for k in sorted(range(len(sprites)), key=lambda j: (sprites[j].y + sprites[j].h, j)):  # back to front
            s = sprites[k]
            x0, y0 = math.floor(s.x), math.floor(s.y)
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x0 + s.w, W), min(y0 + s.h, H)
            placed.append((k, x0, y0))
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            m = s.mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            img[cy0:cy1, cx0:cx1][m] = s.patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][m]
            labels[cy0:cy1, cx0:cx1][m] = k
        for k, x0, y0 in sorted(placed):
            s = sprites[k]
            if x0 + s.w <= 0 or y0 + s.h <= 0 or x0 >= W or y0 >= H:
                continue  # completely outside the image: no gt row
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x0 + s.w, W), min(y0 + s.h, H)
            visible = int(np.count_nonzero(labels[cy0:cy1, cx0:cx1] == k))
            vis = round(visible / int(s.mask.sum()), 4)
            rows.append((f, k + 1, x0, y0, s.w, s.h, 1, 1, vis))
        noise = rng.normal(0, 2.0, (H, W, 1)).astype(np.int16)
        frames.append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
        for s in sprites:
            _step(s, W, H)
    return frames, np.asarray(rows, dtype=np.float64).reshape(-1, 9)


def _det_rows(rng: np.random.Generator, gt: np.ndarray, cfg: SynthConfig) -> list[str]:
    out = []
    for f, _, x, y, w, h, _, _, vis in gt:
        if vis < cfg.det_min_visibility or rng.random() < cfg.det_miss_rate:
            continue
        jx, jy = rng.normal(0, 0.04 * w), rng.normal(0, 0.04 * h)
        jw, jh = w * math.exp(rng.normal(0, 0.04)), h * math.exp(rng.normal(0, 0.04))
        score = min(1.0, 0.5 + 0.5 * vis * rng.uniform(0.8, 1.0))
        out.append(f"{int(f)},-1,{x + jx:.2f},{y + jy:.2f},{jw:.2f},{jh:.2f},{score:.4f},-1,-1,-1")
    return out


def write_sequence(root: str | Path, cfg: SynthConfig, index: int) -> Path:
    """Render sequence ``index`` into ``root/<name>`` (img1, gt, det, seqinfo.ini)."""
    name = cfg.sequence_name(index)
    seq_dir = Path(root) / name
    frames, gt = render_sequence(cfg, index)
    img_dir = seq_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), cfg.jpeg_quality]
    for f, img in enumerate(frames, start=1):
        _, buf = cv2.imencode(".jpg", img, params)
        (img_dir / f"{f:06d}.jpg").write_bytes(buf.tobytes())
    gt_lines = [
        f"{int(r[0])},{int(r[1])},{int(r[2])},{int(r[3])},{int(r[4])},{int(r[5])},1,1,{r[8]:.4f}" for r in gt
    ]
    atomic_write_text(seq_dir / "gt" / "gt.txt", "".join(f"{line}\n" for line in gt_lines))
    det_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, index, 1]))
    det_lines = _det_rows(det_rng, gt, cfg)
    atomic_write_text(seq_dir / "det" / "det.txt", "".join(f"{line}\n" for line in det_lines))
    write_seqinfo(seq_dir, SeqInfo(name, cfg.frame_rate, cfg.length, cfg.width, cfg.height, "img1", ".jpg"))
    return seq_dir


def generate(root: str | Path, cfg: SynthConfig) -> list[Path]:
    """Write ``cfg.sequences`` sequences under ``root``; return their folders."""
    return [write_sequence(root, cfg, i) for i in range(cfg.sequences)]
