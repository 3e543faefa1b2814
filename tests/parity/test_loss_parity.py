"""Our loss on the original's training batch reproduces its loss components and gradients
(``loss_*`` files of the fixture folder, when present)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cstrack.losses import CSTrackLoss
from cstrack.model.sots import import_original, key_pairs

LOSS_FILES = ("loss_batch.npz", "loss_reference.json", "loss_classifier.pt", "loss_grads.npz")


@pytest.fixture(scope="module")
def loss_fixture(parity: Path) -> dict[str, Any]:
    if not all((parity / f).is_file() for f in LOSS_FILES):
        pytest.skip(f"{parity} has no loss_* files")
    with np.load(parity / "loss_batch.npz") as z:
        batch = {k: z[k] for k in z.files}
    with np.load(parity / "loss_grads.npz") as z:
        grads = {k: z[k] for k in z.files}
    return {
        "batch": batch,
        "grads": grads,
        "reference": json.loads((parity / "loss_reference.json").read_text()),
        "classifier": torch.load(parity / "loss_classifier.pt", weights_only=True)["weight"],
    }


def run_loss(parity: Path, fx: dict[str, Any], mode: str) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # as the fixture was made
    try:
        model, _ = import_original(parity / "tiny_state_dict.pt")
        model.train(mode == "train")
        b = fx["batch"]
        loss = CSTrackLoss(model.emb_dim, int(b["nID"]), model.detect.anchors_grid())
        with torch.no_grad():
            loss.classifier.weight.copy_(fx["classifier"])
        emb, raw = model(torch.from_numpy(b["input"]))  # both images in one batch (train-mode BN)
        total, parts = loss(emb, raw, torch.from_numpy(b["targets"]))
        total.backward()
    finally:
        torch.set_num_threads(threads)
    names = dict(key_pairs(model))
    params = dict(model.named_parameters())
    grads = {}
    for key in fx["grads"]:
        name = key.removeprefix("eval.")
        if key.startswith("eval.") != (mode == "eval"):
            continue
        g = loss.classifier.weight.grad if name.startswith("classifier") else params[names[name]].grad
        grads[name] = g.detach().double().numpy()
    return {"total": float(total.detach()), "parts": {k: float(v) for k, v in parts.items()}, "grads": grads}


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_loss_components_and_gradients_match(parity: Path, loss_fixture: dict[str, Any], mode: str) -> None:
    got = run_loss(parity, loss_fixture, mode)
    ref = loss_fixture["reference"][mode]["components"]
    pairs = {"box": "lbox", "obj": "lobj", "id": "id_loss", "total": "total_times_bs"}
    for ours, theirs in pairs.items():
        assert got["parts"][ours] == pytest.approx(ref[theirs], rel=1e-5), ours
    assert got["total"] == pytest.approx(loss_fixture["reference"][mode]["returned_by_sots"]["loss"], rel=1e-5)
    prefix = "" if mode == "train" else "eval."
    assert got["grads"]
    for name, g in got["grads"].items():
        expect = loss_fixture["grads"][prefix + name].astype(np.float64)
        g = g.reshape(expect.shape) if g.size == expect.size else g  # REN lambda: our scalar, their (1,)
        assert g.shape == expect.shape
        # relative error of the gradient as a vector (norm-wise)
        assert np.linalg.norm(g - expect) <= 1e-4 * np.linalg.norm(expect), name
