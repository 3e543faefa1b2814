"""The output rule (cstrack.pathrules) and the shared name check (cstrack.names), issue 24."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.names import check_name, is_name
from cstrack.pathrules import Input, Output, check_paths, check_writable


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "seq" / "img1").mkdir(parents=True)
    (tmp_path / "seq" / "gt.txt").write_text("1,1,1,1,1,1\n")
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    return tmp_path


def test_an_output_through_a_symlink_or_a_hard_link_is_the_input(tree: Path) -> None:
    (tree / "alias.mp4").symlink_to(tree / "clip.mp4")
    os.link(tree / "clip.mp4", tree / "hard.mp4")
    for out in ("alias.mp4", "hard.mp4", "seq/../clip.mp4"):
        with pytest.raises(ConfigError, match=r"--save-video: .* is the input SOURCE .*clip.mp4; refusing"):
            check_paths([Output(tree / out, "--save-video")], [Input(tree / "clip.mp4", "SOURCE")])


def test_inside_and_holding(tree: Path) -> None:
    seq = Input(tree / "seq", "SOURCE")
    with pytest.raises(ConfigError, match=r"--json: .*gt.txt lies inside the input SOURCE .*seq; write"):
        check_paths([Output(tree / "seq" / "gt.txt", "--json")], [seq])
    with pytest.raises(ConfigError, match=r"--out: the output folder .* holds the input SOURCE .*seq"):
        check_paths([Output(tree, "--out", folder=True)], [seq])
    check_paths([Output(tree, "--out")], [seq])  # a folder receiving named files may hold inputs
    check_paths([Output(tree / "res" / "seq.txt", "--out"), None], [seq, None])  # a sibling is fine


def test_two_outputs_that_are_one_file(tree: Path) -> None:
    (tree / "link.json").symlink_to(tree / "w.json")
    with pytest.raises(ConfigError, match=r"--out and --out's record: .* are the same file"):
        check_paths([Output(tree / "w.json", "--out"), Output(tree / "link.json", "--out's record")], [])


def test_a_loop_is_compared_as_written(tree: Path) -> None:
    (tree / "loop.png").symlink_to(tree / "loop.png")
    check_paths([Output(tree / "other.png", "--out")], [Input(tree / "loop.png", "SOURCE")])
    with pytest.raises(ConfigError, match="is the input"):
        check_paths([Output(tree / "loop.png", "--out")], [Input(tree / "loop.png", "SOURCE")])


def test_writable_probe_leaves_nothing(tree: Path) -> None:
    before = sorted(tree.rglob("*"))
    check_writable(tree / "new" / "deeper", "--out")  # probed in the nearest existing folder
    assert sorted(tree.rglob("*")) == before


def test_names_match_in_full() -> None:
    assert is_name("run-1.a_b") and is_name("x" * 200, 200)
    for bad in ("run\n", "a b", "../x", "-x", "", "x" * 201, None, 3):
        assert not is_name(bad, 200), bad
    with pytest.raises(ConfigError, match=r"invalid tag 'nightly\\n' \(letters"):
        check_name("nightly\n", "tag")
