"""bench's peers (Grain, Keras format="grain", PyTorch), skipped rows, runs in fresh processes
and time to first batch, at a tiny size: the shape of what is reported, never the times."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from support import DATA, ROOT

from bytefeed_helpers import build_manifest
from bytefeed_helpers.bench.baselines import (
    PIPELINES,
    SkippedPipeline,
    optional_module,
    peer_audio,
    peer_image,
)
from bytefeed_helpers.bench.comparison import compare
from bytefeed_helpers.bench.data import make_audio_set
from bytefeed_helpers.cli import main


@pytest.fixture(scope="module")
def images():
    m = build_manifest(DATA / "images", kind="image", progress=False)
    return m.subset(np.arange(0, len(m), 6))  # 12 files


def test_every_kind_lists_the_peers():
    for kind in ("image", "audio", "text"):
        assert {"grain", "torch"} <= set(PIPELINES[kind]), kind
    assert "keras-grain" in PIPELINES["image"] and "keras-grain" in PIPELINES["text"]
    assert {"grain@native", "torch@native"} <= set(PIPELINES["audio"])


def test_the_peers_extra_declares_what_optional_module_imports():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    peers = {r.split(">")[0].split("=")[0] for r in extras["optional-dependencies"]["peers"]}
    assert {"grain", "torch", "gilknocker"} <= peers
    assert not any(r.startswith("torch") for r in extras["optional-dependencies"]["dev"])


def test_a_missing_peer_is_skipped_with_the_install_line():
    with pytest.raises(SkippedPipeline, match=r"pip install 'bytefeed-helpers\[peers\]'"):
        optional_module("no_such_peer_module", "no-such-peer")


def test_peer_decoders_shapes(images, tmp_path):
    a = peer_image(images.paths[0], (24, 40))
    assert a.shape == (24, 40, 3) and a.dtype == np.uint8
    clips = make_audio_set(tmp_path / "wav", 2, 22050, 0.5, progress=False)
    assert peer_audio(clips.paths[0], 16000, 0.5).shape == (8000,)
    assert peer_audio(clips.paths[0], 16000, 1.0).shape == (16000,)  # zero-padded
    assert peer_audio(clips.paths[0], 22050, 0.25).shape == (5512,)  # native, cropped


def test_skipped_rows_are_not_failures(images, tmp_path, capsys):
    csv = images.write(tmp_path / "m.csv")
    argv = ["bench", str(csv), "--size", "32", "--batch", "4", "--rounds", "1"]
    status = main([*argv, "--pipelines", "bytefeed,torch", "--json"])
    doc = json.loads(capsys.readouterr().out)
    torch = next(r for r in doc["results"] if r["name"] == "torch")
    if torch["skipped"]:
        assert status == 0 and torch["error"] is None and "torch" in torch["skipped"]
    else:  # torch installed: a real row
        assert status == 0 and torch["samples"] == len(images)


def test_isolated_rounds_and_first_batch(images, tmp_path):
    c = compare(
        images,
        "image",
        pipelines=["bytefeed", "grain"],
        size=32,
        batch_size=4,
        rounds=2,
        bound=False,
        progress=False,
        isolate=True,
        workdir=tmp_path,
    )
    for r in c.results:
        assert r.error is None and len(r.runs) == 2, r.error
        if r.name == "grain":  # timed over whole epochs spanning two waves of its threads
            assert r.samples % len(images) == 0 and r.samples > len(images)
        else:
            assert r.samples == len(images)
        assert len(r.first_batch) == 2 and r.first_batch_s > 0
    table = c.table()
    assert "first batch s |" in table and "in a fresh process each" in table
    assert c.to_dict()["settings"]["isolate"] is True


def test_first_batch_without_isolating(images, tmp_path):
    c = compare(
        images,
        "image",
        pipelines=["bytefeed", "keras-grain"],
        size=32,
        batch_size=4,
        rounds=1,
        bound=False,
        progress=False,
        first_batch=True,
        workdir=tmp_path,
    )
    assert [len(r.first_batch) for r in c.results] == [1, 1]
    assert all(len(r.runs) == 1 and r.samples == len(images) for r in c.results)
