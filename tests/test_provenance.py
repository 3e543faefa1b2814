"""cstrack.provenance: git state, package versions, hardware."""

from __future__ import annotations

import subprocess

import numpy as np

from cstrack.paths import REPO_ROOT
from cstrack.provenance import collect, git_state, package_versions, simd_flags


def test_collect_reports_this_checkout_and_environment():
    p = collect()
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert p.git_commit == head
    assert isinstance(p.git_dirty, bool)
    assert p.packages["numpy"] == np.__version__ and "trackeval" in p.packages
    assert p.cpu_cores >= 1 and p.cpu_model and p.python.count(".") == 2
    assert set(p.to_dict()) == {"git_commit", "git_dirty", "packages", "python", "platform", "cpu_model",
                                "cpu_cores", "gpu"}


def test_git_state_outside_a_repository(tmp_path):
    assert git_state(tmp_path) == (None, None)


def test_git_dirty_flag_follows_tracked_changes(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a\n")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init")
    sha, dirty = git_state(tmp_path)
    assert sha is not None and len(sha) == 40 and dirty is False
    (tmp_path / "f.txt").write_text("b\n")
    assert git_state(tmp_path) == (sha, True)


def test_missing_packages_are_left_out():
    assert package_versions(("numpy", "surely-not-installed-xyz")) == {"numpy": np.__version__}


def test_simd_flags_reads_the_flags_line_in_a_fixed_order():
    zen4 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx512_vnni fma avx2 avx512f sha_ni\n"
    assert simd_flags(zen4) == ["avx2", "fma", "avx512f", "avx512_vnni"]
    assert simd_flags("processor\t: 0\nflags\t: fpu sse2\n") == []
    assert simd_flags("no flags line here\n") == []
