"""Architectures from numbers: one resolved description per model, from any of its sources."""

from __future__ import annotations

import json

import pytest

from cstrack.errors import ConfigError
from cstrack.model import build_model, variant_config, variant_names
from cstrack.model.architecture import Architecture, Scale, first_difference, resolve_rows
from cstrack.model.config import resolve
from cstrack.model.registry import LayerSpec


def test_scaling_rules_hand_computed() -> None:
    s = Scale(0.33, 0.25)
    assert [s.ch(c) for c in (64, 128, 1024)] == [16, 32, 256]  # ceil(c * w / 8) * 8
    assert [s.n(n) for n in (1, 3, 9)] == [1, 1, 3]  # max(round(n * d), 1) when n > 1
    rows = [[-1, 1, "Focus", [64, 3]], [-1, 3, "BottleneckCSP", [64]], [[-1, 0], 1, "Concat", []]]
    specs = resolve_rows(rows, Scale(0.33, 0.5))
    assert specs == (
        LayerSpec("Focus", (-1,), (3, 32, 3)),
        LayerSpec("BottleneckCSP", (0,), (32, 32, 1, True)),
        LayerSpec("Concat", (1, 0), ()),
    )


@pytest.mark.parametrize("variant", variant_names())
def test_variants_round_trip_through_their_explicit_architecture(variant: str) -> None:
    cfg = variant_config(variant)
    arch = resolve(cfg)
    assert Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    explicit = cfg.replace(architecture=arch)
    a, b = build_model(cfg), build_model(explicit)
    assert [(k, tuple(v.shape)) for k, v in a.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in b.state_dict().items()
    ]
    # configs without an explicit architecture serialise as before (their hashes do not move)
    assert "architecture" not in cfg.to_dict() and "architecture" in explicit.to_dict()


def test_channel_bookkeeping_is_checked_layer_by_layer() -> None:
    arch = resolve(variant_config("cstrack-s"))
    bad = list(arch.layers)
    bad[3] = LayerSpec("Conv", bad[3].inputs, (bad[3].args[0] + 8, *bad[3].args[1:]))
    with pytest.raises(ConfigError, match=r"layer 3: Conv expects .* input channels but layer 2 gives"):
        Architecture(**{**arch.__dict__, "layers": tuple(bad)})
    with pytest.raises(ConfigError, match="ren_channels"):
        Architecture(**{**arch.__dict__, "ren_channels": (8, 8, 8)})


def test_first_difference_names_the_layer() -> None:
    s, l_ = resolve(variant_config("cstrack-s")), resolve(variant_config("cstrack-l"))
    assert first_difference(s, s) is None
    assert first_difference(s, l_).startswith("layer 0: Focus[3, 32, 3]")


def test_explicit_architecture_must_agree_with_the_head_fields() -> None:
    cfg = variant_config("cstrack-s")
    with pytest.raises(ConfigError, match="emb_dim"):
        cfg.replace(emb_dim=64, architecture=resolve(cfg))
