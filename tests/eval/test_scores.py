"""Sequences scored one at a time (as a Dask worker does after tracking) and combined give exactly
what ``evaluate()`` gives on the same files: every field, per sequence and combined, compared with
``==`` (no tolerance), with each score passed through its JSON record first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cstrack.data.synthetic import SynthConfig, generate
from cstrack.errors import EvaluationError
from cstrack.eval import COMBINED, evaluate
from cstrack.eval.scores import SequenceScore, combine_scores, score_sequence
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"
EXPECTED = json.loads((GOLDEN / "EXPECTED.json").read_text())
PRESET = {"MOT15": "mot15", "MOT16": "mot16", "MOT17": "mot17", "MOT20": "mot20"}


def _fake_results(gt_root: Path, out: Path, names: list[str], seed: int) -> None:
    """A tracker's output made from the gt: rows dropped, boxes jittered, some ids swapped, false
    positives added (deterministic); every class and flag ignored, as a tracker would."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows = np.loadtxt(gt_root / name / "gt" / "gt.txt", delimiter=",", ndmin=2)
        keep = rows[rng.random(len(rows)) > 0.15]
        keep[:, 2:6] += rng.normal(0, 2.0, (len(keep), 4))
        keep[:, 4:6] = np.abs(keep[:, 4:6]) + 1
        swap = rng.random(len(keep)) < 0.05
        keep[swap, 1] += 1000
        fp = keep[rng.random(len(keep)) < 0.05].copy()
        fp[:, 1] += 5000
        fp[:, 2] += 200
        table = np.concatenate([keep, fp])
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        seen: set[tuple[int, int]] = set()
        lines = []
        for r in table:
            key = (int(r[0]), int(r[1]))
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"{int(r[0])},{int(r[1])},{r[2]:.3f},{r[3]:.3f},{r[4]:.3f},{r[5]:.3f},1,-1,-1,-1\n")
        (out / f"{name}.txt").write_text("".join(lines))


def _sets(tmp: Path) -> list[tuple[str, Path, Path, str, list[str]]]:
    """(label, gt root, results root, preset, sequences) of every set the equality is checked on."""
    out = []
    for name in sorted(k for k in EXPECTED if not k.startswith("_")):
        spec = EXPECTED[name]
        out.append((f"golden-{name}", GOLDEN / spec["gt_folder"], GOLDEN / spec["trackers_folder"] / spec["tracker"]
                    / "data", PRESET[spec["benchmark"]], sorted(spec["sequences"])))
    mot17 = shared_data() / "mot17-mini" / "train"
    names = sorted(p.name for p in mot17.iterdir() if (p / "gt" / "gt.txt").is_file())
    _fake_results(mot17, tmp / "mot17-res", names, 1)
    out.append(("mot17-mini", mot17, tmp / "mot17-res", "mot17", names))
    pets = shared_data() / "mot15"
    pets_names = sorted(p.name for p in pets.iterdir() if (p / "gt" / "gt.txt").is_file())
    _fake_results(pets, tmp / "pets-res", pets_names, 2)
    out.append(("pets09", pets, tmp / "pets-res", "mot15", pets_names))
    synth = tmp / "synth"
    generate(synth, SynthConfig(sequences=3, length=30, width=160, height=120, objects=5, seed=3))
    synth_names = sorted(p.name for p in synth.iterdir())
    _fake_results(synth, tmp / "synth-res", synth_names, 3)
    out.append(("synthetic", synth, tmp / "synth-res", "plain", synth_names))
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b)) and np.asarray(a).dtype == np.asarray(b).dtype  # type: ignore[arg-type]
    return type(a) is type(b) and a == b


def test_scored_apart_and_combined_equals_evaluate(tmp_path):
    for label, gt_root, results, preset, names in _sets(tmp_path):
        want = evaluate(gt_root, results, names, preset)
        scores = [SequenceScore.from_json(json.loads(json.dumps(score_sequence(gt_root, results, n, preset)[0].to_json())))
                  for n in reversed(names)]  # completion order is not name order
        got = combine_scores(sorted(scores, key=lambda s: s.name))
        assert got.sequences == want.sequences, label
        for seq in [*names, COMBINED]:
            assert got[seq] == want[seq], (label, seq)  # every field, exactly
        for seq in [*names, COMBINED]:  # and TrackEval's raw dicts, value by value, dtype by dtype
            for metric, res in want.raw[seq].items():
                for key, value in res.items():
                    assert _same(got.raw[seq][metric][key], value), (label, seq, metric, key)
        assert got.combined["gt_dets"] > 0, label


def test_combining_needs_one_preset_and_distinct_names(tmp_path):
    spec = EXPECTED["tud"]
    gt, res = GOLDEN / spec["gt_folder"], GOLDEN / spec["trackers_folder"] / spec["tracker"] / "data"
    a, _ = score_sequence(gt, res, sorted(spec["sequences"])[0], "mot15")
    with pytest.raises(EvaluationError, match="scored twice"):
        combine_scores([a, a])
    other = SequenceScore("X", "mot17", a.frames, a.raw)
    with pytest.raises(EvaluationError, match="different presets"):
        combine_scores([a, other])
    with pytest.raises(EvaluationError, match="no sequences"):
        combine_scores([])
    with pytest.raises(EvaluationError, match="sequence score record"):
        SequenceScore.from_json({"name": "x"})


def test_score_names_the_bad_file(tmp_path):
    spec = EXPECTED["tud"]
    gt = GOLDEN / spec["gt_folder"]
    seq = sorted(spec["sequences"])[0]
    res = tmp_path / "res"
    res.mkdir()
    shutil.copy(GOLDEN / spec["trackers_folder"] / spec["tracker"] / "data" / f"{seq}.txt", res / f"{seq}.txt")
    with (res / f"{seq}.txt").open("a") as fh:
        fh.write("1,1,zero,0,1,1,1,-1,-1,-1\n")
    with pytest.raises(Exception, match=f"{seq}.txt"):
        score_sequence(gt, res, seq, "mot15")
