"""Notebook 01 (build manifests) finds every sample file and every broken one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_01_build_manifests(run_nb, tmp_path):
    results = run_nb("01_build_manifests", OUT_DIR=str(tmp_path / "manifests")).results
    assert results["files"] == {"image": 72, "audio": 48, "text": 48}
    assert results["classes"]["image"] == ["cat", "coffee", "rocket"]
    assert sum(results["split_sizes"]["image"]) == 72
    # every broken or missing file of the broken manifests is reported, no good file is
    problems = {k: sorted(name for name, _ in v) for k, v in results["problems"].items()}
    assert problems["image"] == ["empty.jpg", "missing.jpg", "not_an_image.png", "truncated.jpg"]
    assert problems["audio"] == ["cut_header.wav", "empty.wav", "missing.wav", "truncated.flac"]
    assert problems["text"] == ["binary_junk.txt", "missing.txt"]
    assert results["checked"] == {"image": 14, "audio": 14, "text": 12}
    assert (tmp_path / "manifests" / "image_train.csv").exists()
