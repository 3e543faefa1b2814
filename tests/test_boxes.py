"""Every box conversion of :mod:`cstrack.boxes`: hand-computed cases and property tests
(round trips, invariants) for NumPy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cstrack.boxes import (
    iou_matrix,
    tlwh_to_xyah,
    tlwh_to_xyxy,
    xyah_to_tlwh,
    xywh_to_xyxy,
    xyxy_to_tlwh,
    xyxy_to_xywh,
)

coord = st.floats(-2000, 2000, allow_nan=False, width=64)
size = st.floats(0.5, 1000, allow_nan=False, width=64)


@st.composite
def tlwh_boxes(draw: st.DrawFn, max_n: int = 12) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    xy = draw(arrays(np.float64, (n, 2), elements=coord))
    wh = draw(arrays(np.float64, (n, 2), elements=size))
    return np.concatenate([xy, wh], axis=1)


def test_hand_computed() -> None:
    tlwh = np.array([[10.0, 20.0, 4.0, 8.0]])
    assert tlwh_to_xyxy(tlwh).tolist() == [[10, 20, 14, 28]]
    assert xyxy_to_xywh(tlwh_to_xyxy(tlwh)).tolist() == [[12, 24, 4, 8]]
    assert tlwh_to_xyah(tlwh).tolist() == [[12, 24, 0.5, 8]]
    assert xywh_to_xyxy(np.array([[12.0, 24.0, 4.0, 8.0]])).tolist() == [[10, 20, 14, 28]]
    # two 2x2 boxes overlapping by one column: IoU 2 / 6; +1 convention: 3x3 boxes, overlap 2x3
    a, b = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(2 / 6)
    assert iou_matrix(a, b, plus_one=True)[0, 0] == pytest.approx(6 / 12)


@settings(max_examples=60, deadline=None)
@given(tlwh_boxes())
def test_round_trips(tlwh: np.ndarray) -> None:
    np.testing.assert_allclose(xyxy_to_tlwh(tlwh_to_xyxy(tlwh)), tlwh, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(xyah_to_tlwh(tlwh_to_xyah(tlwh)), tlwh, rtol=1e-12, atol=1e-9)
    xyxy = tlwh_to_xyxy(tlwh)
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(xyxy)), xyxy, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(tlwh_boxes())
def test_invariants(tlwh: np.ndarray) -> None:
    xyxy, xywh, xyah = tlwh_to_xyxy(tlwh), xyxy_to_xywh(tlwh_to_xyxy(tlwh)), tlwh_to_xyah(tlwh)
    assert (xyxy[:, 2] >= xyxy[:, 0]).all() and (xyxy[:, 3] >= xyxy[:, 1]).all()
    np.testing.assert_allclose(xywh[:, 2:], tlwh[:, 2:], rtol=1e-12, atol=1e-9)  # sizes kept
    np.testing.assert_allclose(xyah[:, :2], xywh[:, :2], rtol=1e-12, atol=1e-9)  # same centre
    np.testing.assert_allclose(xyah[:, 2] * xyah[:, 3], tlwh[:, 2], rtol=1e-12)  # a * h = w


@settings(max_examples=40, deadline=None)
@given(tlwh_boxes(), tlwh_boxes())
def test_iou_properties(a_tlwh: np.ndarray, b_tlwh: np.ndarray) -> None:
    a, b = tlwh_to_xyxy(a_tlwh), tlwh_to_xyxy(b_tlwh)
    for plus_one in (False, True):
        m = iou_matrix(a, b, plus_one)
        assert m.shape == (len(a), len(b))
        assert ((m >= 0) & (m <= 1 + 1e-12)).all()
        np.testing.assert_allclose(iou_matrix(b, a, plus_one), m.T, rtol=1e-12, atol=1e-15)  # symmetric
        np.testing.assert_allclose(np.diag(iou_matrix(a, a, plus_one)), 1.0, rtol=1e-12)  # self overlap
    # translating both sets together changes nothing
    shift = np.array([37.5, -12.25, 37.5, -12.25])
    np.testing.assert_allclose(iou_matrix(a + shift, b + shift), iou_matrix(a, b), rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(tlwh_boxes(max_n=6))
def test_torch_and_numpy_agree(tlwh: np.ndarray) -> None:
    t = torch.from_numpy(tlwh)
    for fn in (tlwh_to_xyxy, tlwh_to_xyah, xyah_to_tlwh, xyxy_to_tlwh, xyxy_to_xywh, xywh_to_xyxy):
        out = fn(t)
        assert isinstance(out, torch.Tensor) and out.shape == t.shape
        np.testing.assert_array_equal(out.numpy(), fn(tlwh))
