"""Checkpoints of the original CSTrack code (SOTS): safe import and export under its key names.

The original's checkpoints come in two forms:

- ``state_dict``: a torch zip file ``{"model": {name: tensor}}`` under the original key names
  (``model.{i}.*``), fp32 or fp16;
- ``pickled_module``: the yolov5-style dict ``{"epoch", "best_fitness", "model": <fp16 nn.Module>,
  ...}`` whose pickle names classes such as ``models.mot.cstrack.Model`` or
  ``models.mot.common.Conv``, which cannot be imported here (and must not be: unpickling runs
  whatever the file names).

Nothing from a file is imported or executed.  :func:`read_original` lists the pickle's globals
without unpickling it (:func:`torch.serialization.get_unsafe_globals_in_checkpoint` scans the
opcodes), allows only the name patterns such checkpoints use (:data:`ALLOWED_GLOBALS`), puts an
inert placeholder class in place of each, loads with torch's weights-only unpickler and rebuilds
the state dict from the placeholders' ``_parameters`` / ``_buffers`` / ``_modules`` tables.

:func:`key_pairs` is the one name mapping (``MAPPING_VERSION``), used both ways: import maps the
original names onto :class:`CSTrackModel`'s (REN's λ reshaped from (1,) to a scalar; ``k``,
``anchors`` and ``anchor_grid`` checked, not loaded), export writes them back.
"""

from __future__ import annotations

import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cstrack.errors import WeightsError
from cstrack.fsutil import atomic_path, sha256_file
from cstrack.model.architecture import (
    SOTS_BACKBONE_LAYERS,
    SOTS_OUTPUTS,
    SOTS_TRUNK_LAYERS,
    Architecture,
    Scale,
    first_difference,
    load_trunk,
    per_level,
    resolve_rows,
)
from cstrack.model.blocks import LRELU_SLOPE
from cstrack.model.config import ModelConfig, resolve, variant_config, variant_names
from cstrack.model.inference_settings import InferenceSettings
from cstrack.model.network import CSTrackModel
from cstrack.model.registry import LayerSpec
from cstrack.model.ren import BRANCH_SLOPE
from cstrack.model.saan import CAM_SLOPE

MAPPING_VERSION = 1
DETECT_K = 10.0  # SOTS decodes with the standard formula only when Detect.k == 10 (spec Q5)
BN_EPS_EXPECTED = 1e-3  # spec §1: every BatchNorm2d


def original_inference() -> InferenceSettings:
    """Test-time settings of the original (spec §11, TEST.COMMON_HYPER, with SOTS's tracker
    behaviour as our ``original`` preset); the frame rate comes from each sequence."""
    return InferenceSettings(input_size=(1088, 608), conf_thres=0.5, nms_thres=0.6, tracker_preset="original")


# Globals an original checkpoint may name (each replaced by an inert placeholder class).
ALLOWED_GLOBALS: tuple[tuple[str, str], ...] = (
    (r"models(\.[A-Za-z_]\w*)+", "the original's model classes (models.*)"),
    (r"torch\.nn\.modules(\.[A-Za-z_]\w*)+", "torch.nn module classes"),
    (r"numpy\.(_core|core)\.multiarray\.(_reconstruct|scalar)", "NumPy array reconstruction"),
    (r"numpy\.(ndarray|dtype)", "NumPy array reconstruction"),
    (r"numpy\.dtypes\.\w+DType", "NumPy array reconstruction"),
)


class _Inert:
    """Stands in for a class named in an original pickle: stores what the pickle gives it and runs
    nothing (no ``__init__``, ``__setstate__`` or ``__reduce__`` of the real class)."""

    _source_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        obj = object.__new__(cls)
        obj.__dict__["_inert_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state, slots = state
            if isinstance(slots, dict):
                self.__dict__.update(slots)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_inert_state"] = state


def _placeholder(name: str) -> type:
    module, _, qual = name.rpartition(".")
    return type(qual, (_Inert,), {"__module__": module, "__qualname__": qual, "_source_name": name})


def _allowed(name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern, _ in ALLOWED_GLOBALS)


@dataclass
class OriginalCheckpoint:
    """What :func:`read_original` found: the state dict under original names and how it was stored."""

    state: dict[str, torch.Tensor]
    form: str  # "state_dict" or "pickled_module"
    dtype: str  # dtype of the floating tensors, e.g. "torch.float16"
    sha256: str
    bn_eps: dict[str, float] = field(default_factory=dict)  # module path -> eps (pickled modules only)
    lrelu_slopes: dict[str, float] = field(default_factory=dict)  # module path -> negative_slope


def _collect_module(obj: Any, prefix: str, found: OriginalCheckpoint, out: dict[str, torch.Tensor]) -> None:
    d = getattr(obj, "__dict__", {})
    params = d.get("_parameters") or {}
    buffers = d.get("_buffers") or {}
    skip = set(d.get("_non_persistent_buffers_set") or ())
    for name, t in params.items():
        if isinstance(t, torch.Tensor):
            out[prefix + name] = t
    for name, t in buffers.items():
        if isinstance(t, torch.Tensor) and name not in skip:
            out[prefix + name] = t
    src = getattr(type(obj), "_source_name", "")
    path = prefix[:-1]
    if src.endswith("BatchNorm2d") and "eps" in d:
        found.bn_eps[path] = float(d["eps"])
    if src.endswith("LeakyReLU") and "negative_slope" in d:
        found.lrelu_slopes[path] = float(d["negative_slope"])
    for name, child in (d.get("_modules") or {}).items():
        if child is not None:
            _collect_module(child, f"{prefix}{name}.", found, out)


def read_original(path: str | Path) -> OriginalCheckpoint:
    """Read an original checkpoint of either form without executing anything from it."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    if not zipfile.is_zipfile(p):
        from cstrack.model.weights import NOT_A_CHECKPOINT, is_legacy_torch_file

        if not is_legacy_torch_file(p):  # neither torch's zip format nor its legacy one (issues 20, 24)
            raise WeightsError(f"{p}: {NOT_A_CHECKPOINT}")
        raise WeightsError(
            f"{p}: a legacy (non-zip) torch file, whose pickle cannot be inspected before it runs; re-save it "
            f"as a zip checkpoint where you trust it (torch>=1.6: torch.save(torch.load(f)['model'].state_dict(), "
            f"'out.pt')) and import that"
        )
    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(p)))
    except Exception as exc:  # the scanner refuses opcodes it does not know; so do we
        raise WeightsError(f"{p}: cannot list the globals of its pickle ({type(exc).__name__}: {exc})") from None
    refused = [n for n in names if not _allowed(n)]
    if refused:
        kinds = "; ".join(sorted({what for _, what in ALLOWED_GLOBALS}))
        raise WeightsError(f"{p}: refusing to load: its pickle names {refused[0]!r}" +
                           (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "") +
                           f", which is not among the allowed globals ({kinds})")
    placeholders: list[Any] = [(_placeholder(n), n) for n in names]
    try:
        with torch.serialization.safe_globals(placeholders):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{p}: not a readable original checkpoint: {str(exc).splitlines()[0]}") from None
    found = OriginalCheckpoint({}, "", "", sha256_file(p))
    model = obj.get("model") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and model is None and any(str(k).startswith("model.") for k in obj):
        model = obj
    state: dict[str, torch.Tensor] = {}
    if isinstance(model, _Inert):
        found.form = "pickled_module"
        _collect_module(model, "", found, state)
    elif isinstance(model, Mapping) and model and all(isinstance(v, torch.Tensor) for v in model.values()):
        found.form = "state_dict"
        state = {str(k): v for k, v in model.items()}
    else:
        what = type(model).__name__ if model is not None else f"a {type(obj).__name__} without a 'model' entry"
        raise WeightsError(f"{p}: not an original CSTrack checkpoint (its 'model' entry is {what})")
    if not state:
        raise WeightsError(f"{p}: not an original CSTrack checkpoint (its 'model' entry, "
                           f"{getattr(type(model), '_source_name', type(model).__name__)}, holds no tensors)")
    floats = {str(t.dtype) for t in state.values() if t.is_floating_point()}
    found.dtype = ",".join(sorted(floats))
    found.state = state
    return found


# ---------------------------------------------------------------------------------------------
# The name mapping

_SAAN_ORDER = ("proj1.0", "proj1.1", "proj2.0", "proj2.1", "proj2.2", "proj3.0", "proj3.1", "proj3.2",
               "node.0", "node.1", "node.2")
_SAAN_MAP = (
    # (ours, original) sub-module prefixes of the embedding head
    ("proj3.", "proj1.0."), ("att3.0.squeeze.", "proj1.1.conv_s.0."), ("att3.0.conv.", "proj1.1.s_attention."),
    ("proj4.", "proj2.0."), ("up4.", "proj2.1."), ("att4.0.squeeze.", "proj2.2.conv_s.0."),
    ("att4.0.conv.", "proj2.2.s_attention."),
    ("proj5.", "proj3.0."), ("up5.", "proj3.1."), ("att5.0.squeeze.", "proj3.2.conv_s.0."),
    ("att5.0.conv.", "proj3.2.s_attention."),
    ("fused_att.0.conv.", "node.0.c_attention.0."), ("fused_att.0.norm.", "node.0.c_attention.1."),
    ("fused_att.0.fc.", "node.0.c_attention.3."),
    ("fuse.", "node.1."), ("out.", "node.2."),
)


def original_layout_problem(config: ModelConfig) -> str | None:
    """Why ``config`` has no counterpart in the original code (``None`` when it has one)."""
    if config.trunk != "yolov5_v3" and (config.architecture is None or config.architecture.activation != "lrelu"):
        return f"trunk {config.trunk} (the original has the YOLOv5 v3 trunk only)"
    if config.ren != "ren" or not (config.ren_self and config.ren_cross) or config.ren_lambda is not None:
        return "REN switched off or ablated (the original has REN with learned lambdas)"
    if config.emb_head != "saan" or config.saan_level_sam != (True, True, True) \
            or config.saan_level_cam != (False, False, False) or config.saan_fused != "cam":
        return "an ablated embedding head (the original has the full SAAN)"
    return None


def _to_original(key: str, n_trunk: int) -> str:
    part, _, rest = key.partition(".")
    if part == "trunk":
        return f"model.{rest}"
    if part == "ren":
        level, _, sub = rest.partition(".")
        idx = n_trunk + int(level)
        sub = {"lam1": "w1", "lam2": "w2"}.get(sub, sub)
        sub = sub.replace("branch1.conv.", "c_attention1.0.").replace("branch2.conv.", "c_attention2.0.")
        return f"model.{idx}.{sub}"
    if part == "emb_head":
        for ours, orig in _SAAN_MAP:
            if rest.startswith(ours):
                return f"model.{n_trunk + 3}.{orig}{rest[len(ours):]}"
    if part == "detect":
        return f"model.{n_trunk + 4}.{rest}"
    raise WeightsError(f"no original name for {key!r} (mapping version {MAPPING_VERSION})")


def _order(orig: str, n_trunk: int) -> tuple[int, int]:
    layer = int(orig.split(".")[1])
    if layer == n_trunk + 3:
        sub = ".".join(orig.split(".")[2:4])
        return layer, _SAAN_ORDER.index(sub)
    return layer, 0


def key_pairs(model: CSTrackModel) -> list[tuple[str, str]]:
    """``(original name, our name)`` for every tensor of ``model``'s state dict, in the original's
    state-dict order (what ``Model.state_dict()`` of the original lists)."""
    problem = original_layout_problem(model.config)
    if problem:
        raise WeightsError(f"model {model.config.variant} has no counterpart in the original code: {problem}")
    n = len(model.trunk)
    pairs = [(_to_original(k, n), k) for k in model.state_dict()]
    # a stable sort keeps our order inside each original module (it matches the original's)
    return sorted(pairs, key=lambda p: _order(p[0], n))


# ---------------------------------------------------------------------------------------------
# Architecture from the original's tensors


def _layer_keys(state: Mapping[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    pre = f"model.{i}."
    return {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}


def _shape(t: torch.Tensor | None) -> tuple[int, ...] | None:
    return None if t is None else tuple(t.shape)


def _infer_layer(i: int, template: LayerSpec, keys: Mapping[str, torch.Tensor], src: str) -> LayerSpec:
    block = template.block

    def need(name: str) -> torch.Tensor:
        if name not in keys:
            raise WeightsError(f"{src}: layer {i} ({block}): no tensor model.{i}.{name} (found {sorted(keys)[:4]})")
        return keys[name]

    if block == "Focus":
        w = need("conv.conv.weight")
        return LayerSpec(block, template.inputs, (w.shape[1] // 4, w.shape[0], w.shape[2]))
    if block == "Conv":
        w = need("conv.weight")
        return LayerSpec(block, template.inputs, (w.shape[1], w.shape[0], w.shape[2], *template.args[3:]))
    if block == "BottleneckCSP":
        c1 = need("cv1.conv.weight").shape[1]
        c2 = need("cv4.conv.weight").shape[0]
        n = len({k.split(".")[1] for k in keys if k.startswith("m.")})
        return LayerSpec(block, template.inputs, (c1, c2, n, template.args[3]))
    if block == "SPP":
        return LayerSpec(block, template.inputs, (need("cv1.conv.weight").shape[1], need("cv2.conv.weight").shape[0],
                                                  template.args[2]))
    if keys:
        raise WeightsError(f"{src}: layer {i} ({block}) should hold no tensors, found {sorted(keys)[:4]}")
    return template


def infer_architecture(state: Mapping[str, torch.Tensor], src: str = "checkpoint") -> Architecture:
    """The architecture an original state dict describes: SOTS's CSTrack topology (YOLOv5 v3 rows)
    with channels, kernels and Bottleneck repeats read from the tensors' shapes."""
    template = resolve_rows(load_trunk("yolov5_v3")["layers"], Scale(1.0, 1.0))
    layers = tuple(_infer_layer(i, template[i], _layer_keys(state, i), src) for i in range(SOTS_TRUNK_LAYERS))
    n = SOTS_TRUNK_LAYERS

    def tensor(key: str) -> torch.Tensor:
        if key not in state:
            raise WeightsError(f"{src}: no tensor {key} (is this a CSTrack checkpoint?)")
        return state[key]

    ren = tuple(int(tensor(f"model.{n + lvl}.c_attention1.0.weight").shape[0]) for lvl in range(3))
    det = n + 4
    if f"model.{det}.anchor_grid" in state:
        grid = tensor(f"model.{det}.anchor_grid").float().reshape(3, -1, 2)
    else:
        grid = tensor(f"model.{det}.anchors").float().reshape(3, -1, 2) * torch.tensor([8.0, 16.0, 32.0])[:, None, None]
    na = grid.shape[1]
    nc = int(tensor(f"model.{det}.m.0.weight").shape[0]) // na - 5
    try:
        return Architecture(
            layers=layers, activation="lrelu", outputs=SOTS_OUTPUTS, backbone_layers=SOTS_BACKBONE_LAYERS,
            ren_channels=per_level(ren, "ren_channels"),
            saan_width=int(tensor(f"model.{n + 3}.proj1.0.conv.weight").shape[0]),
            emb_dim=int(tensor(f"model.{n + 3}.node.2.weight").shape[0]),
            anchors=tuple(tuple((float(w), float(h)) for w, h in level.tolist()) for level in grid),
            nc=nc,
        )
    except Exception as exc:
        raise WeightsError(f"{src}: the tensors do not describe a consistent CSTrack model: {exc}") from None


def config_for(arch: Architecture) -> ModelConfig:
    """A :class:`ModelConfig` carrying ``arch``: a named variant's when they resolve alike, else
    ``variant="custom"`` with multiples estimated from the stem and layer 4 (descriptive only)."""
    for name in variant_names():
        cfg = variant_config(name)
        if original_layout_problem(cfg) is None and resolve(cfg) == arch:
            return cfg.replace(architecture=arch)
    width = arch.layers[0].args[1] / 64
    depth = max(arch.layers[4].args[2], 1) / 9 if arch.layers[4].block == "BottleneckCSP" else 1.0
    return ModelConfig(
        variant="custom", trunk="yolov5_v3", depth_multiple=round(min(depth, 4.0), 4),
        width_multiple=round(min(width, 4.0), 4), anchors=arch.anchors, nc=arch.nc,
        saan_width=arch.saan_width, emb_dim=arch.emb_dim, architecture=arch,
    )


# ---------------------------------------------------------------------------------------------
# Import / export


def _check_extras(state: Mapping[str, torch.Tensor], model: CSTrackModel, src: str) -> list[str]:
    """Check ``k``, ``anchors`` and ``anchor_grid`` of Detect; return the keys checked."""
    det = f"model.{len(model.trunk) + 4}."
    used = []
    k = state.get(det + "k")
    if k is not None:
        used.append(det + "k")
        if k.numel() != 1 or float(k.float().reshape(())) != DETECT_K:
            raise WeightsError(
                f"{src}: {det}k = {k.float().reshape(-1).tolist()}, not {DETECT_K:g}: the original decodes such a "
                f"model with its alternative xy formula (spec Q5), which is not implemented"
            )
    px = model.detect.anchors_px.float()
    strides = model.detect.strides.float()[:, None, None]
    for name, expect in (("anchors", px / strides), ("anchor_grid", px)):
        t = state.get(det + name)
        if t is None:
            continue
        used.append(det + name)
        if t.numel() != expect.numel() or not torch.allclose(t.float().reshape(expect.shape), expect, atol=1e-3):
            raise WeightsError(f"{src}: {det}{name} {t.float().reshape(-1).tolist()} differ from the architecture's "
                               f"anchors {expect.reshape(-1).tolist()}")
    return used


def _check_recorded(found: OriginalCheckpoint, model: CSTrackModel, src: str) -> None:
    n = len(model.trunk)
    for path, eps in found.bn_eps.items():
        if eps != BN_EPS_EXPECTED:
            raise WeightsError(f"{src}: {path} is a BatchNorm2d with eps {eps:g}; the model uses {BN_EPS_EXPECTED:g}")
    for path, slope in found.lrelu_slopes.items():
        layer = int(path.split(".")[1]) if path.startswith("model.") else -1
        expect = BRANCH_SLOPE if n <= layer < n + 3 else CAM_SLOPE if "c_attention" in path else LRELU_SLOPE
        if slope != expect:
            raise WeightsError(f"{src}: {path} is a LeakyReLU with slope {slope:g}; the model uses {expect:g}")


def map_original(state: Mapping[str, torch.Tensor], model: CSTrackModel, src: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Our fp32 state dict from an original one: every source tensor used exactly once, every
    model tensor filled, shapes equal (a mismatch names the first differing layer, both shapes)."""
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    used = set(_check_extras(state, model, src))
    for orig, ours in key_pairs(model):
        layer = orig.split(".")[1]
        if orig not in state:
            raise WeightsError(f"{src}: layer {layer}: {orig} is missing from the file "
                               f"(the architecture needs shape {tuple(own[ours].shape)})")
        t = state[orig]
        target = own[ours]
        if tuple(t.shape) != tuple(target.shape):
            if ours.split(".")[-1] in ("lam1", "lam2") and t.numel() == 1:
                t = t.reshape(())
            else:
                raise WeightsError(f"{src}: layer {layer} differs: {orig} has shape {tuple(t.shape)} in the file, "
                                   f"{tuple(target.shape)} in the architecture")
        out[ours] = t.detach().to(target.dtype).clone()
        used.add(orig)
    unused = [k for k in state if k not in used]
    if unused:
        shape = _shape(state[unused[0]])
        raise WeightsError(f"{src}: layer {unused[0].split('.')[1]}: {unused[0]} {shape} is in the file but not in "
                           f"the architecture ({len(unused)} unused tensor(s))")
    return out


def import_original(src: str | Path, arch: Architecture | None = None, variant: str | None = None) -> tuple[CSTrackModel, OriginalCheckpoint]:
    """Build our model from an original checkpoint (architecture given, named or inferred)."""
    found = read_original(src)
    from cstrack.model.weights import check_finite

    check_finite(found.state, src)
    if variant is not None:
        if variant not in variant_names():
            raise WeightsError(f"--variant: unknown variant {variant!r}; known: {', '.join(variant_names())}")
        cfg = variant_config(variant)
        problem = original_layout_problem(cfg)
        if problem:
            raise WeightsError(f"--variant {variant}: not a model of the original code ({problem})")
        if arch is not None and first_difference(resolve(cfg), arch):
            raise WeightsError(f"--arch and --variant {variant} differ: {first_difference(arch, resolve(cfg))}")
        cfg = cfg.replace(architecture=resolve(cfg))
    else:
        cfg = config_for(arch if arch is not None else infer_architecture(found.state, str(src)))
    model = CSTrackModel(cfg)
    _check_recorded(found, model, str(src))
    model.load_state_dict(map_original(found.state, model, str(src)), strict=True)
    model.eval()
    return model, found


def export_original(model: CSTrackModel, out: str | Path) -> dict[str, torch.Tensor]:
    """Write ``{"model": state dict under the original names}`` (fp32, zip) that the original code
    loads with ``model.load_state_dict(ckpt["model"])``; returns that state dict."""
    own = model.state_dict()
    n = len(model.trunk)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    det = f"model.{n + 4}."
    px = model.detect.anchors_px.detach().float().cpu()
    extras = {
        det + "k": torch.tensor([DETECT_K]),
        det + "anchors": px / model.detect.strides.float().cpu()[:, None, None],
        det + "anchor_grid": px.reshape(3, 1, -1, 1, 1, 2).clone(),
    }
    for orig, ours in key_pairs(model):
        if orig.startswith(det + "m.") and not any(k in state for k in extras):
            state.update(extras)  # the original registers k, anchors, anchor_grid before Detect's convs
        t = own[ours].detach().cpu().clone()
        if ours.split(".")[-1] in ("lam1", "lam2"):
            t = t.reshape(1)
        state[orig] = t
    with atomic_path(Path(out)) as tmp:
        torch.save({"model": state}, tmp)
    return state


def import_checkpoint(
    src: str | Path, out: str | Path, arch: Architecture | None = None, variant: str | None = None,
) -> dict[str, Any]:
    """``cstrack weights import``: an original checkpoint -> our tensor-only checkpoint ``out`` and
    its record (source sha256 and form, number of original keys, mapping version, the original's
    inference settings).  Returns the record."""
    from cstrack.model.weights import save_weights

    model, found = import_original(src, arch, variant)
    details = {
        "source_file": Path(src).name,
        "source_sha256": found.sha256,
        "source_form": found.form,
        "source_dtype": found.dtype,
        "original_keys": len(found.state),
        "mapping_version": MAPPING_VERSION,
        "architecture_from": "--arch" if arch is not None else "--variant" if variant else "tensor shapes",
    }
    provenance = {"origin": "original CSTrack checkpoint (SOTS), imported by cstrack weights import"}
    return save_weights(out, model, provenance, extra={"import": details, "inference": original_inference().to_dict()})
