"""Each ablation switch of ModelConfig changes the built graph."""

from __future__ import annotations

import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.model import build_model
from cstrack.model.ren import REN, NoDecoupler, PlainDecoupler
from cstrack.model.saan import SAAN, ChannelAttention, JDEEmbedding, SpatialAttention


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def structure(model: torch.nn.Module) -> list[tuple[str, str]]:
    return [(name, type(m).__name__) for name, m in model.named_modules()]


def test_ren_off_removes_its_parameters() -> None:
    on, off = build_model("cstrack-n"), build_model("cstrack-n", ren="none")
    ren_params = sum(p.numel() for p in on.ren.parameters())
    assert ren_params == sum(2 * (9 * c * c + c) + 2 for c in (64, 128, 256))
    assert sum(p.numel() for p in off.ren.parameters()) == 0
    assert n_params(on) - n_params(off) == ren_params
    assert all(isinstance(m, NoDecoupler) for m in off.ren)


def test_learned_lambda_is_a_parameter_and_fixed_lambda_is_not() -> None:
    learned = build_model("cstrack-n").ren[0]
    fixed = build_model("cstrack-n", ren_lambda=0.3).ren[0]
    assert isinstance(learned, REN) and isinstance(fixed, REN)
    names = {k: v.detach() for k, v in learned.named_parameters()}
    assert float(names["lam1"]) == 0.5 and float(names["lam2"]) == 0.5  # spec §4 init
    assert "lam1" not in dict(fixed.named_parameters())
    assert float(dict(fixed.named_buffers())["lam1"]) == pytest.approx(0.3)
    assert n_params(build_model("cstrack-n")) - n_params(build_model("cstrack-n", ren_lambda=0.3)) == 6


def test_self_or_cross_only_drop_lambdas_and_change_the_relation() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 64, 16, 16)
    both = REN(64)
    self_only = REN(64, cross_relation=False)
    self_only.load_state_dict({k: v for k, v in both.state_dict().items() if not k.startswith("lam")})
    cross_only = REN(64, self_relation=False)
    cross_only.load_state_dict(self_only.state_dict())
    a_both, a_self, a_cross = both.relations(x)[0], self_only.relations(x)[0], cross_only.relations(x)[0]
    # A = 0.5 S + 0.5 R with lambda at its initial 0.5
    assert torch.allclose(a_both, 0.5 * a_self + 0.5 * a_cross, atol=1e-6)
    assert not torch.allclose(a_self, a_cross)
    # rows of every relation map sum to 1 (softmax over the last axis)
    assert torch.allclose(a_self.sum(-1), torch.ones(1, 64), atol=1e-5)
    with pytest.raises(ConfigError, match="relation"):
        build_model("cstrack-n", ren_self=False, ren_cross=False)


def test_plain_cnn_replacement() -> None:
    m = build_model("cstrack-n", ren="conv")
    assert all(isinstance(r, PlainDecoupler) for r in m.ren)
    assert sum(p.numel() for p in m.ren.parameters()) == sum(2 * (c * c + c) for c in (64, 128, 256))


def test_saan_attention_switches_change_the_graph() -> None:
    base = build_model("cstrack-n")
    assert isinstance(base.emb_head, SAAN)
    kinds = lambda m: [type(x).__name__ for x in m.emb_head.modules()]  # noqa: E731
    assert kinds(base).count("SpatialAttention") == 3 and kinds(base).count("ChannelAttention") == 1
    no_sam = build_model("cstrack-n", saan_level_sam=(False, True, True))
    assert kinds(no_sam).count("SpatialAttention") == 2
    cam_levels = build_model("cstrack-n", saan_level_cam=True)
    assert kinds(cam_levels).count("ChannelAttention") == 4
    for fused, sam, cam in [("none", 3, 0), ("sam", 4, 0), ("cam", 3, 1), ("both", 4, 1)]:
        m = build_model("cstrack-n", saan_fused=fused)
        assert (kinds(m).count("SpatialAttention"), kinds(m).count("ChannelAttention")) == (sam, cam), fused
    assert isinstance(build_model("cstrack-n", saan_fused="sam").emb_head.fused_att[0], SpatialAttention)
    assert isinstance(build_model("cstrack-n", saan_fused="cam").emb_head.fused_att[0], ChannelAttention)


def test_embedding_head_and_dimension() -> None:
    m = build_model("cstrack-n", emb_head="jde", emb_dim=64)
    assert isinstance(m.emb_head, JDEEmbedding)
    emb, _ = m(torch.zeros(1, 3, 64, 96))
    assert emb.shape == (1, 8, 12, 64)
    assert structure(build_model("cstrack-n", emb_dim=256)) == structure(build_model("cstrack-n"))
    assert build_model("cstrack-n", emb_dim=256).emb_head.out.out_channels == 256


@pytest.mark.parametrize(
    ("field", "value"),
    [("ren", "maybe"), ("ren_lambda", 1.5), ("saan_fused", "all"), ("emb_dim", 0), ("saan_level_sam", (True,))],
)
def test_invalid_switches_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        build_model("cstrack-n", **{field: value})
