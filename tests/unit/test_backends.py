"""A short ``fit`` of each kind of stream on every Keras 3 backend installed.

Keras picks its backend once, at import, so each backend's fits run in a subprocess with
``KERAS_BACKEND`` set (as test_engine_padding.py's JAX fit). TensorFlow and JAX are test
dependencies (``jax[cpu]`` in the ``dev`` extra); the PyTorch backend runs when ``torch`` is
installed (``pip install torch``) and is skipped with that message otherwise.

Each run: an image, an audio and a text stream from ``bf.from_directory(..., subset="both")``
fitted for a few epochs with validation, then ``predict``; whole audio clips padded per batch
with their lengths as a second input (a dict of inputs); on TensorFlow also raw text into a
``TextVectorization`` inside the model (strings reach no other backend's model).
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
import soundfile as sf
from PIL import Image
from support import ROOT

FIT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import keras
    import bytefeed_helpers as bf

    root = Path(sys.argv[1])
    keras.utils.set_random_seed(0)
    split = {"validation_split": 0.25, "subset": "both", "seed": 0, "verbose": False,
             "batch_size": 4, "workers": 2}
    layers = keras.layers
    result = {"backend": keras.backend.backend()}

    def run(name, model, train, val, epochs, loss="sparse_categorical_crossentropy"):
        model.compile(keras.optimizers.Adam(0.05), loss, metrics=["accuracy"])
        history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
        out = model.predict(val, verbose=0)
        result[name] = {
            "loss": history.history["loss"],
            "val_loss": history.history["val_loss"],
            "predicted": list(np.asarray(out).shape),
            "val_files": len(val.engine.source),
        }

    # images: bright against dark, uint8 batches rescaled in the model
    train, val = bf.from_directory(root / "images", "image", image_size=8, **split)
    run("image", keras.Sequential([
        keras.Input((8, 8, 3)), layers.Rescaling(1 / 255), layers.GlobalAveragePooling2D(),
        layers.Dense(2, activation="softmax")]), train, val, 8)

    # audio: Keras's [B, N, 1] waveforms, one-hot labels
    train, val = bf.from_directory(root / "audio", "audio", sampling_rate=8000,
                                   output_sequence_length=400, channel_axis=True,
                                   label_mode="categorical", **split)
    run("audio", keras.Sequential([
        keras.Input((400, 1)), layers.Conv1D(4, 9, activation="relu"),
        layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax")]),
        train, val, 4, loss="categorical_crossentropy")

    # audio: whole clips of their own lengths, padded per batch, lengths as an input
    train, val = bf.from_directory(root / "audio", "audio", sampling_rate=8000,
                                   output_sequence_length=None, lengths=True, **split)
    audio = keras.Input((None,), name="audio")
    lengths = keras.Input((), dtype="int32", name="lengths")
    energy = layers.Lambda(lambda t: keras.ops.sum(keras.ops.abs(t[0]), axis=1, keepdims=True)
                           / keras.ops.cast(keras.ops.expand_dims(t[1], -1), "float32"))(
        [audio, lengths])  # the mean over each clip's own samples: padding left out
    run("audio_lengths", keras.Model({"audio": audio, "lengths": lengths},
                                     layers.Dense(2, activation="softmax")(energy)),
        train, val, 4)

    # text: token ids from the stream's tokenizer
    train, val = bf.from_directory(root / "text", "text", max_length=8, **split)
    run("text", keras.Sequential([
        keras.Input((8,), dtype="int32"),
        layers.Embedding(train.tokenizer.vocabulary_size, 4, mask_zero=True),
        layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax")]),
        train, val, 8)

    if keras.backend.backend() == "tensorflow":  # raw strings into the model
        train, val = bf.from_directory(root / "text", "text", output="text", **split)
        vectorize = layers.TextVectorization(max_tokens=50, output_sequence_length=8)
        vectorize.adapt([d for x, _ in train for d in x.numpy()])
        run("raw_text", keras.Sequential([
            keras.Input((), dtype="string"), vectorize, layers.Embedding(50, 4, mask_zero=True),
            layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax")]),
            train, val, 8)
    print("RESULT " + json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """Two easy classes of each kind: dark/bright images, quiet/loud clips, two vocabularies."""
    root = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        for kind in ("images", "audio", "text"):
            (root / kind / name).mkdir(parents=True)
        for i in range(8):
            level = 40 + 160 * c + int(rng.integers(0, 30))
            Image.new("RGB", (10, 10), (level,) * 3).save(root / "images" / name / f"{i}.png")
            clip = (0.1 + 0.5 * c) * np.sin(np.arange(600 + 40 * i) * 0.3)
            sf.write(root / "audio" / name / f"{i}.wav", clip, 8000)
            words = ("red green blue", "one two three")[c]
            (root / "text" / name / f"{i}.txt").write_text(f"{words} {words} w{i}")
    return root


def fit_on(backend: str, folders: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", FIT, str(folders)],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        cwd=ROOT,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def check(result: dict, backend: str) -> None:
    assert result["backend"] == backend
    kinds = ["image", "audio", "audio_lengths", "text"]
    kinds += ["raw_text"] if backend == "tensorflow" else []
    for kind in kinds:
        run = result[kind]
        assert all(np.isfinite(run["loss"])) and all(np.isfinite(run["val_loss"])), kind
        assert run["predicted"] == [run["val_files"], 2], kind  # every validation file once
    for kind in ("image", "text"):  # two easy classes: a few epochs learn them
        assert result[kind]["loss"][-1] < result[kind]["loss"][0], (kind, result[kind])


@pytest.mark.timeout(480)
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_fit_every_kind_of_stream(folders, backend):
    pytest.importorskip(backend, reason=f"{backend} is a test dependency (the dev extra)")
    check(fit_on(backend, folders), backend)


@pytest.mark.timeout(480)
def test_fit_every_kind_of_stream_on_torch(folders):
    pytest.importorskip(
        "torch", reason="PyTorch is not installed: pip install torch to test the torch backend"
    )
    check(fit_on("torch", folders), "torch")
