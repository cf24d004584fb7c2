"""``batch_policy="pad"``: batches of one shape, weighted so the losses are the real samples'.

A batch with a skipped file comes out short, and so does the last batch: on the JAX backend,
or with ``jit_compile=True``, each new batch shape compiles the step again (jax#803,
jax#26265). Under ``"pad"`` every batch has ``batch_size`` rows and a ``sample_weight`` of 1
for real samples, 0 for padding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

import bytefeed_helpers as bf
from bytefeed_helpers.engine import BatchEngine, stack
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.sources import FileSource
from bytefeed_helpers.stream import Stream

N, BATCH = 22, 4  # 22 = 5 full batches + a short one of 2
BAD = {1, 9, 10}


def numbers(folder: Path) -> bf.Manifest:
    paths = []
    for i in range(N):
        path = folder / f"{i:03d}.num"
        if i not in BAD:
            path.write_text(str(i))
        paths.append(path)
    return bf.Manifest(paths, [i % 2 for i in range(N)], ["even", "odd"])


def read_number(path) -> np.ndarray:
    return np.array([float(Path(path).read_text())], dtype=np.float32)


def stream_of(manifest, **kw) -> Stream:
    options = StreamOptions(batch_size=BATCH, shuffle=False, workers=2, **kw)
    return Stream(BatchEngine(FileSource(manifest), read_number, stack, options))


def test_every_batch_has_batch_size_rows_and_weights_mark_the_real_ones(tmp_path):
    batches = list(stream_of(numbers(tmp_path), batch_policy="pad"))
    assert len(batches) == -(-N // BATCH)  # no batch left out, none short
    assert all(len(b) == 3 for b in batches)  # (x, y, sample_weight)
    assert {x.shape for x, _, _ in batches} == {(BATCH, 1)}
    assert all(w.dtype == np.float32 and w.shape == (BATCH,) for _, _, w in batches)
    real = [int(v) for x, _, w in batches for v, keep in zip(x[:, 0], w, strict=True) if keep]
    assert real == sorted(set(range(N)) - BAD)  # every good sample once, in order
    pads = [
        (float(v), int(t))
        for x, y, w in batches
        for v, t, k in zip(x[:, 0], y, w, strict=True)
        if not k
    ]
    assert pads == [(0.0, 0)] * (len(batches) * BATCH - len(real))


def test_the_short_policy_is_unchanged(tmp_path):
    batches = list(stream_of(numbers(tmp_path)))
    assert all(len(b) == 2 for b in batches)
    assert sum(len(x) for x, _ in batches) == N - len(BAD)


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match=r"batch_policy must be one of 'short', 'pad'"):
        StreamOptions(batch_policy="drop")  # type: ignore[arg-type]


JAX_FIT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import numpy as np
    import keras
    sys.path.insert(0, os.environ["TESTS"])
    from test_engine_padding import numbers, stream_of

    folder = Path(sys.argv[1])
    manifest = numbers(folder)
    shapes = []

    class Record(keras.layers.Layer):
        def call(self, x):
            # runs when a step is traced, once per shape (symbolic shapes are Keras's own
            # shape inference, not a compiled step)
            if all(isinstance(d, int) for d in x.shape):
                shapes.append(tuple(x.shape))
            return x

    def model():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(2)])
        m.compile(
            "sgd",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[
                "accuracy",
                keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent"),
            ],
        )
        return m

    result = {"backend": keras.backend.backend()}
    for policy in ("short", "pad"):
        shapes.clear()
        m = model()
        m.fit(stream_of(manifest, batch_policy=policy, seed=0), epochs=2, verbose=0)
        result[policy + "_shapes"] = sorted(set(shapes))
    m = model()
    padded = m.evaluate(stream_of(manifest, batch_policy="pad"), verbose=0, return_dict=True)
    xs, ys = zip(*stream_of(manifest))
    x, y = np.concatenate(xs), np.concatenate(ys)
    plain = m.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    result["padded"], result["plain"] = padded, plain
    print("RESULT " + json.dumps(result))
    """
)


@pytest.mark.timeout(300)
def test_a_jax_fit_sees_one_shape_and_weighted_metrics_equal_the_unpadded(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TESTS": str(ROOT / "tests" / "unit")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", JAX_FIT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["backend"] == "jax"
    assert len(result["short_shapes"]) > 1  # short batches: a step compiled per shape
    assert result["pad_shapes"] == [[BATCH, 1]]  # padded: one shape all epoch
    # weighted metrics sum weight x value over every batch: padding rows count for nothing
    for key in ("accuracy", "xent"):
        assert result["padded"][key] == pytest.approx(result["plain"][key], rel=1e-5)
