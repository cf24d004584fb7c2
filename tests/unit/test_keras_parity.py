"""Keras's own tests of its folder loaders and of ``PyDataset``, ported to ``from_directory``.

Each scenario of ``keras/src/utils/image_dataset_utils_test.py``,
``audio_dataset_utils_test.py``, ``text_dataset_utils_test.py`` and
``keras/src/trainers/data_adapters/py_dataset_adapter_test.py`` (Keras 3.15, the installed
version) builds the same folders in ``tmp_path`` (random images, WAVs and texts in class
folders), runs Keras's function and ``bf.from_directory`` on them, and compares shapes,
dtypes, ``class_names``, file counts and label values (and, where both decode the same bytes
the same way, the values themselves). Where bytefeed deliberately differs, the test asserts
bytefeed's documented behaviour and a comment says why:

- images are ``uint8`` by default (``dtype="float32"`` gives Keras's dtype): a quarter of
  the bandwidth, and the model rescales on the accelerator;
- a stream cannot be unbatched (``batch_size=None``): a ``PyDataset`` is a sequence of batches;
- waveforms are ``[B, N]`` unless ``channel_axis=True`` (Keras's ``[B, N, 1]``);
- ``ragged=True`` has no equivalent: whole clips are padded per batch, and ``lengths=True``
  gives their true lengths;
- the split is stratified (``Manifest.split``), so its sizes are per class;
- the stream reshuffles itself every epoch, and ignores Keras's shuffling of indices;
- Keras's ``workers``/``use_multiprocessing`` stay 1/False: the stream decodes on its threads.

The grain-format variants of Keras's tests are the tf ones here: ``from_directory`` has no
``format`` (it refuses one).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import bytefeed_helpers as bf
from bytefeed_helpers.errors import BadFileError

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras.src.trainers.data_adapters import py_dataset_adapter  # noqa: E402

WORKERS = 2  # a stream's decoding threads: this machine's cores, whatever the CI runner's


# --- the folders Keras's tests build ----------------------------------------------------------
def class_folders(root: Path, num_classes: int, nested_dirs: bool) -> list[Path]:
    """``class_i`` (and with ``nested_dirs`` three folders below each), as Keras's tests."""
    paths = []
    for c in range(num_classes):
        top = Path(f"class_{c}")
        below = [top / "subfolder_1", top / "subfolder_2", top / "subfolder_1" / "sub-subfolder"]
        for p in [top, *below] if nested_dirs else [top]:
            (root / p).mkdir(parents=True)
            paths.append(root / p)
    return paths


def image_folder(
    root: Path, num_classes=2, nested_dirs=False, color_mode="rgb", count=16, seed=0
) -> Path:
    """``_prepare_directory`` of image_dataset_utils_test: 24 x 24 random images, JPEG for
    rgb and PNG otherwise, dealt round the class folders."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = class_folders(root, num_classes, nested_dirs)
    channels = {"grayscale": 1, "rgba": 4}.get(color_mode, 3)
    for i in range(count):
        pixels = rng.integers(0, 256, (24, 24, channels), dtype=np.uint8)
        img = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        img.save(paths[i % len(paths)] / f"image_{i}.{'jpg' if color_mode == 'rgb' else 'png'}")
    return root


def audio_clips(count: int, different_lengths: bool, rng: np.random.Generator) -> list:
    """``_get_audio_samples``: mono clips of 30 samples (10-30 when ``different_lengths``)."""
    lengths = rng.integers(10, 31, count) if different_lengths else [30] * count
    return [rng.random((int(n), 1)) for n in lengths]


def write_wav(path: Path, clip: np.ndarray) -> None:
    # tf.audio.encode_wav, as Keras's test writes them: 16-bit PCM at 1000 Hz
    sf.write(path, clip, 1000, subtype="PCM_16")


def audio_folder(
    root: Path, num_classes=2, nested_dirs=False, count=16, different_lengths=False, seed=0
) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = class_folders(root, num_classes, nested_dirs)
    for i, clip in enumerate(audio_clips(count, different_lengths, rng)):
        write_wav(paths[i % len(paths)] / f"audio_{i}.wav", clip)
    return root


def text_folder(root: Path, num_classes=2, nested_dirs=False, count=16, length=20, seed=0):
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = class_folders(root, num_classes, nested_dirs)
    for i in range(count):
        text = "".join(rnd.choice(string.printable) for _ in range(length))
        (paths[i % len(paths)] / f"text_{i}.txt").write_text(text, newline="")
    return root


def bf_dir(folder, kind, **kw):
    kw.setdefault("workers", WORKERS)
    return bf.from_directory(folder, kind, verbose=False, **kw)


def first(stream):
    # Keras's next(iter(dataset)) starts a fresh pass; a stream's plain loop goes on from where
    # the last one broke off, so look at batch 0 by index, which moves no cursor
    return stream[0]


def epoch(stream) -> list:
    return list(stream)


def n_samples(batches) -> int:
    return sum(len(b[0] if isinstance(b, tuple) else b) for b in batches)


# --- image_dataset_utils_test ----------------------------------------------------------------
def k_images(folder, **kw):
    return keras.utils.image_dataset_from_directory(os.fspath(folder), verbose=False, **kw)


def test_image_no_labels_takes_files_at_any_depth(tmp_path):
    folder = image_folder(tmp_path / "d", count=7, num_classes=2)
    rng = np.random.default_rng(1)
    for i in range(3):  # three more in the parent folder
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
            folder / f"image_{i}.jpg"
        )
    kd = k_images(folder, batch_size=5, image_size=(18, 18), labels=None)
    stream = bf_dir(folder, "image", batch_size=5, image_size=(18, 18), labels=None)
    assert kd.class_names is None
    assert stream.class_names == []  # no classes: a stream's class_names is always a list
    kx, x = next(iter(kd)), first(stream)  # plain images, no labels
    assert list(kx.shape) == list(x.shape) == [5, 18, 18, 3]
    assert kx.dtype == tf.float32 and x.dtype == np.uint8  # bytefeed: uint8 by default
    k_batches, batches = list(kd), epoch(stream)
    assert len(k_batches) == len(batches) == 2
    assert sum(len(b) for b in k_batches) == sum(len(b) for b in batches) == 10


def test_image_label_modes_of_two_classes(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2)
    for mode, shape, dtype in (
        ("int", [8], "int32"),
        ("binary", [8, 1], "float32"),
        ("categorical", [8, 2], "float32"),
    ):
        kx, ky = next(iter(k_images(folder, batch_size=8, image_size=(18, 18), label_mode=mode)))
        x, y = first(bf_dir(folder, "image", batch_size=8, image_size=18, label_mode=mode))
        assert list(kx.shape) == list(x.shape) == [8, 18, 18, 3]
        assert list(ky.shape) == list(y.shape) == shape
        assert ky.dtype.name == y.dtype.name == dtype
        # dtype="float32" is Keras's float images
        fx, _ = first(bf_dir(folder, "image", batch_size=8, image_size=18, dtype="float32"))
        assert fx.dtype == np.float32 and kx.dtype == tf.float32


def test_image_static_shape_in_graph(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2)
    kd = k_images(folder, batch_size=8, image_size=(18, 18), label_mode="int")
    stream = bf_dir(folder, "image", batch_size=8, image_size=(18, 18), label_mode="int")
    ds = stream.to_tf_dataset()
    assert kd.element_spec[0].shape.as_list() == ds.element_spec[0].shape.as_list()
    assert ds.element_spec[0].shape.as_list() == [None, 18, 18, 3]


def test_image_sample_count_and_multiclass(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=4, count=15)
    kd = k_images(folder, batch_size=8, image_size=(18, 18), label_mode=None)
    stream = bf_dir(folder, "image", batch_size=8, image_size=(18, 18), label_mode=None)
    assert sum(len(b) for b in kd) == n_samples(epoch(stream)) == 15
    assert list(next(iter(kd)).shape) == list(first(stream).shape) == [8, 18, 18, 3]
    for mode, shape in (("int", [8]), ("categorical", [8, 4])):
        _, ky = next(iter(k_images(folder, batch_size=8, image_size=(18, 18), label_mode=mode)))
        _, y = first(bf_dir(folder, "image", batch_size=8, image_size=18, label_mode=mode))
        assert list(ky.shape) == list(y.shape) == shape and ky.dtype.name == y.dtype.name


@pytest.mark.parametrize(("color_mode", "channels"), [("rgba", 4), ("grayscale", 1)])
def test_image_color_modes(tmp_path, color_mode, channels):
    folder = image_folder(tmp_path / "d", num_classes=4, color_mode=color_mode)
    kx, _ = next(iter(k_images(folder, batch_size=8, image_size=(18, 18), color_mode=color_mode)))
    x, _ = first(bf_dir(folder, "image", batch_size=8, image_size=18, color_mode=color_mode))
    assert list(kx.shape) == list(x.shape) == [8, 18, 18, channels]
    # the same pixels where neither resizes (24 px kept): PNG is lossless, alpha included
    kd = k_images(folder, batch_size=16, image_size=(24, 24), color_mode=color_mode, shuffle=False)
    stream = bf_dir(
        folder, "image", batch_size=16, image_size=24, color_mode=color_mode, shuffle=False
    )
    kx, _ = next(iter(kd))
    x, _ = first(stream)
    assert np.array_equal(kx.numpy(), x.astype(np.float32))


def test_image_validation_split(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=10)
    common = {"batch_size": 10, "image_size": (18, 18), "validation_split": 0.2, "seed": 1337}
    for subset, n in (("training", 8), ("validation", 2)):
        kx, _ = next(iter(k_images(folder, subset=subset, **common)))
        x, _ = first(bf_dir(folder, "image", subset=subset, **common))
        # two classes of 5: a stratified 0.2 takes one of each, as Keras's cut of 2 here
        assert len(kx) == len(x) == n
    k_train, k_val = k_images(folder, subset="both", **common)
    train, val = bf_dir(folder, "image", subset="both", **common)
    assert len(next(iter(k_train))[0]) == len(first(train)[0]) == 8
    assert len(next(iter(k_val))[0]) == len(first(val)[0]) == 2


def test_image_split_sizes_are_stratified(tmp_path):
    # Keras cuts the last int(0.2 * 12) = 2 files of one shuffle: both may be of one class.
    # bytefeed splits each class on its own (round(0.2 * n), at least one of a class of two
    # or more): 9 files of class_0 give 2, 3 of class_1 give 1.
    folder = tmp_path / "d"
    image_folder(folder, num_classes=2, count=0)
    rng = np.random.default_rng(2)
    for c, n in (("class_0", 9), ("class_1", 3)):
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
                folder / c / f"{i}.jpg"
            )
    common = {"image_size": 18, "validation_split": 0.2, "seed": 1, "subset": "both"}
    _, k_val = k_images(folder, **{**common, "image_size": (18, 18)})
    assert sum(len(x) for x, _ in k_val) == 2
    train, val = bf_dir(folder, "image", **common)
    ys = np.concatenate([y for _, y in val])
    assert len(ys) == 3 and sorted(ys.tolist()) == [0, 0, 1]
    assert n_samples(epoch(train)) == 9


def test_image_manual_labels(tmp_path):
    one = image_folder(tmp_path / "wrong", num_classes=1, count=4)
    with pytest.raises(ValueError, match="match the number of files"):
        k_images(one, batch_size=8, image_size=(18, 18), labels=[0, 1, 0], shuffle=False)
    with pytest.raises(ValueError, match="match the number of files"):
        bf_dir(one, "image", batch_size=8, image_size=18, labels=[0, 1, 0], shuffle=False)

    for name, classes, count, labels in (
        ("single", 1, 4, [0, 1, 0, 1]),
        ("multiple", 3, 6, [0, 1, 0, 1, 1, 1]),
    ):
        folder = image_folder(tmp_path / name, num_classes=classes, count=count)
        kw = {"batch_size": 8, "image_size": (18, 18), "labels": labels, "shuffle": False}
        kd, stream = k_images(folder, **kw), bf_dir(folder, "image", **kw)
        assert kd.class_names == stream.class_names == ["0", "1"]
        (kx, ky), (x, y) = next(iter(kd)), first(stream)
        assert list(kx.shape) == list(x.shape) == [count, 18, 18, 3]
        assert ky.numpy().tolist() == y.tolist() == labels
        # the labels line up because the files come in Keras's order
        paths = stream.engine.source.manifest.paths
        assert [os.path.normpath(p) for p in kd.file_paths] == [os.path.normpath(p) for p in paths]


def test_image_nested_folders_follow_links(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=25, nested_dirs=True)
    kd = k_images(folder, batch_size=8, image_size=(18, 18), label_mode=None, follow_links=True)
    stream = bf_dir(folder, "image", batch_size=8, image_size=18, label_mode=None,
                    follow_links=True)  # fmt: skip
    assert sum(len(b) for b in kd) == n_samples(epoch(stream)) == 25


def test_image_file_order_is_keras_order(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=25, nested_dirs=True)
    kd = k_images(folder, image_size=(18, 18), shuffle=False)
    stream = bf_dir(folder, "image", image_size=18, shuffle=False)
    paths = stream.engine.source.manifest.paths
    assert [os.path.normpath(p) for p in kd.file_paths] == [os.path.normpath(p) for p in paths]
    ky = np.concatenate([y for _, y in kd])
    assert ky.tolist() == np.concatenate([y for _, y in stream]).tolist()


def test_image_no_images(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=0)
    with pytest.raises(ValueError, match="No images found"):
        k_images(folder)
    with pytest.raises(ValueError, match="No images found"):
        bf_dir(folder, "image")


@pytest.mark.parametrize("option", ["crop_to_aspect_ratio", "pad_to_aspect_ratio"])
def test_image_crop_and_pad_to_aspect_ratio(tmp_path, option):
    folder = image_folder(tmp_path / "d", num_classes=2, count=5)
    kx, _ = next(iter(k_images(folder, batch_size=5, image_size=(18, 18), **{option: True})))
    stream = bf_dir(folder, "image", batch_size=5, image_size=(18, 18), **{option: True})
    x, _ = first(stream)
    assert list(kx.shape) == list(x.shape) == [5, 18, 18, 3]
    assert stream.options["fit"] == ("crop" if option.startswith("crop") else "pad")


ERRORS = [
    # (arguments, Keras's message, bytefeed's message)
    ({"labels": "other"}, "`labels` argument should be", "`labels` argument should be"),
    ({"label_mode": "other"}, "`label_mode` argument must be", "label_mode must be one of"),
    (
        {"labels": [0, 0, 1, 1, 1], "class_names": ["class_0", "class_1", "class_2"]},
        'only pass `class_names` if `labels="inferred"`',
        'only pass `class_names` if `labels="inferred"`',
    ),
    (
        {"labels": [0, 0, 1, 1]},
        "Expected the lengths of `labels` to match the number of files",
        "Expected the lengths of `labels` to match the number of files",
    ),
    (
        {"class_names": ["class_0", "wrong_class"]},
        "`class_names` passed did not match",
        "`class_names` passed did not match",
    ),
    ({"label_mode": "binary"}, "there must be exactly 2", "there must be exactly 2"),
    (
        {"validation_split": 2},
        "`validation_split` must be between 0 and 1",
        "`validation_split` must be between 0 and 1",
    ),
    (
        {"validation_split": 0.2, "subset": "other"},
        '`subset` must be either "training", "validation" or "both"',
        "subset must be one of 'training', 'validation', 'both'",
    ),
    (
        {"validation_split": 0.0, "subset": "training"},
        "`validation_split` must be set",
        "`validation_split` must be set",
    ),
    (
        {"validation_split": 0.2, "subset": "training"},
        "must provide a `seed`",
        "must provide a `seed`",
    ),
]


@pytest.mark.parametrize(("kwargs", "keras_message", "message"), ERRORS)
def test_image_errors(tmp_path, kwargs, keras_message, message):
    folder = image_folder(tmp_path / "d", num_classes=3, count=5)
    with pytest.raises(ValueError, match=re.escape(keras_message)):
        k_images(folder, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        bf_dir(folder, "image", **kwargs)


def test_image_color_mode_error(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=3, count=5)
    with pytest.raises(ValueError, match="`color_mode` must be one of"):
        k_images(folder, color_mode="other")
    with pytest.raises(ValueError, match="`color_mode` must be one of"):
        bf_dir(folder, "image", color_mode="other")


def test_image_not_batched_is_refused(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=2)
    kd = k_images(folder, batch_size=None, image_size=(18, 18), label_mode=None, shuffle=False)
    assert len(next(iter(kd)).shape) == 3
    # a stream is a keras.utils.PyDataset, a sequence of batches: batch_size=None is refused
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        bf_dir(folder, "image", batch_size=None, image_size=18, label_mode=None)


def test_image_shuffle(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=2, count=25, nested_dirs=True)
    kw = {"batch_size": 8, "image_size": (18, 18), "label_mode": None, "follow_links": True}
    plain = bf_dir(folder, "image", shuffle=False, **kw)
    assert np.array_equal(np.concatenate(epoch(plain)), np.concatenate(epoch(plain)))
    shuffled = bf_dir(folder, "image", shuffle=True, seed=1337, **kw)
    one, two = np.concatenate(epoch(shuffled)), np.concatenate(epoch(shuffled))
    assert not np.array_equal(one, two)  # each epoch reshuffled, as Keras's tf.data shuffle
    again = bf_dir(folder, "image", shuffle=True, seed=1337, **kw)
    assert np.array_equal(one, np.concatenate(epoch(again)))  # the seed repeats it


# --- audio_dataset_utils_test ----------------------------------------------------------------
def k_audio(folder, **kw):
    return keras.utils.audio_dataset_from_directory(os.fspath(folder), verbose=False, **kw)


def bf_audio(folder, **kw):
    # the files are 1000 Hz, and Keras keeps each file's rate (resampling needs tensorflow_io)
    kw.setdefault("sampling_rate", 1000)
    return bf_dir(folder, "audio", **kw)


def test_audio_standalone_no_labels(tmp_path):
    folder = audio_folder(tmp_path / "d", count=7, num_classes=2)
    rng = np.random.default_rng(5)
    for i, clip in enumerate(audio_clips(3, False, rng)):
        write_wav(folder / f"audio_{i}.wav", clip)
    kw = {"batch_size": 5, "output_sequence_length": 30, "labels": None}
    kd = k_audio(folder, **kw)
    stream = bf_audio(folder, channel_axis=True, **kw)  # Keras's [B, N, 1]
    kx, x = next(iter(kd)), first(stream)
    assert tuple(kx.shape) == x.shape == (5, 30, 1) and kx.dtype.name == x.dtype.name == "float32"
    assert first(bf_audio(folder, **kw)).shape == (5, 30)  # bytefeed's default: [B, N]
    k_batches, batches = list(kd), epoch(stream)
    assert len(k_batches) == len(batches) == 2
    assert sum(len(b) for b in k_batches) == n_samples(batches) == 10


def test_audio_same_samples_as_keras(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=8)
    kw = {"batch_size": 8, "output_sequence_length": 30, "shuffle": False}
    kx, ky = next(iter(k_audio(folder, **kw)))
    x, y = first(bf_audio(folder, channel_axis=True, **kw))
    assert np.array_equal(kx.numpy(), x) and ky.numpy().tolist() == y.tolist()


def test_audio_label_modes_of_two_classes(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2)
    for mode, shape in (("int", (8,)), ("binary", (8, 1)), ("categorical", (8, 2))):
        kw = {"batch_size": 8, "output_sequence_length": 30, "label_mode": mode}
        kx, ky = next(iter(k_audio(folder, **kw)))
        x, y = first(bf_audio(folder, channel_axis=True, **kw))
        assert tuple(kx.shape) == x.shape == (8, 30, 1) and x.dtype == np.float32
        assert tuple(ky.shape) == y.shape == shape and ky.dtype.name == y.dtype.name


def test_audio_static_shape_in_graph(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2)
    kd = k_audio(folder, batch_size=8, output_sequence_length=30, label_mode="int")
    assert kd.element_spec[0].shape.as_list() == [None, 30, None]  # Keras: channels unknown
    stream = bf_audio(folder, batch_size=8, output_sequence_length=30, channel_axis=True)
    # bytefeed mixes every file to mono, so its channel axis is known: 1
    assert stream.to_tf_dataset().element_spec[0].shape.as_list() == [None, 30, 1]


def test_audio_sample_count_and_multiclass(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=4, count=15)
    kw = {"batch_size": 8, "output_sequence_length": 30}
    assert sum(len(b) for b in k_audio(folder, label_mode=None, **kw)) == 15
    assert n_samples(epoch(bf_audio(folder, label_mode=None, **kw))) == 15
    for mode, shape in (("int", (8,)), ("categorical", (8, 4))):
        _, ky = next(iter(k_audio(folder, label_mode=mode, **kw)))
        x, y = first(bf_audio(folder, label_mode=mode, channel_axis=True, **kw))
        assert x.shape == (8, 30, 1) and tuple(ky.shape) == y.shape == shape


def test_audio_validation_split(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=10)
    kw = {"batch_size": 10, "output_sequence_length": 30, "validation_split": 0.2, "seed": 1337}
    for subset, n in (("training", 8), ("validation", 2)):
        kx, _ = next(iter(k_audio(folder, subset=subset, **kw)))
        x, _ = first(bf_audio(folder, subset=subset, channel_axis=True, **kw))
        assert tuple(kx.shape) == x.shape == (n, 30, 1)


def test_audio_manual_labels(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=2)
    kw = {"batch_size": 8, "output_sequence_length": 30, "labels": [0, 1], "shuffle": False}
    _, ky = next(iter(k_audio(folder, **kw)))
    _, y = first(bf_audio(folder, **kw))
    assert ky.numpy().tolist() == y.tolist() == [0, 1]


def test_audio_nested_folders(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=25, nested_dirs=True)
    kw = {"batch_size": 8, "output_sequence_length": 30, "label_mode": None, "follow_links": True}
    assert sum(len(b) for b in k_audio(folder, **kw)) == 25
    assert n_samples(epoch(bf_audio(folder, **kw))) == 25


def test_audio_no_audio(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=0)
    with pytest.raises(ValueError, match="No audio files found in directory"):
        k_audio(folder)
    with pytest.raises(ValueError, match="No audio files found in directory"):
        bf_audio(folder)


def test_audio_ragged_is_whole_clips_with_lengths(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16, different_lengths=True)
    kx, _ = next(iter(k_audio(folder, ragged=True, batch_size=8, shuffle=False)))
    assert kx.shape.as_list() == [8, None, None]
    # no ragged batches: whole clips padded to the batch's longest, their lengths beside them
    with pytest.raises(ValueError, match="ragged=True has no bytefeed equivalent"):
        bf_audio(folder, ragged=True, batch_size=8)
    stream = bf_audio(folder, output_sequence_length=None, lengths=True, batch_size=8,
                      shuffle=False)  # fmt: skip
    x, _ = first(stream)
    assert x["audio"].shape == (8, int(x["lengths"].max()))
    assert x["lengths"].tolist() == [len(c) for c in kx.to_list()]


def test_audio_no_output_sequence_length_pads_each_batch(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16, different_lengths=True)
    kd = k_audio(folder, batch_size=2, shuffle=False)
    stream = bf_audio(folder, batch_size=2, output_sequence_length=None, shuffle=False)
    k_lengths = [b.shape[1] for b, _ in kd]
    lengths = [x.shape[1] for x, _ in stream]
    assert all(10 <= n <= 30 for n in lengths)
    assert lengths == k_lengths  # the same files in the same order: the same padded lengths
    for (kx, _), (x, _) in zip(kd, stream, strict=True):
        assert np.array_equal(kx.numpy()[..., 0], x)  # padded with zeros at the end, as Keras


def test_audio_variable_length_label_modes(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16, different_lengths=True)
    kw = {"batch_size": 8, "shuffle": False, "output_sequence_length": None}
    x = first(bf_audio(folder, label_mode=None, channel_axis=True, **kw))
    assert x.ndim == 3 and x.shape[0] == 8 and x.shape[-1] == 1
    for mode, shape in (("binary", (8, 1)), ("categorical", (8, 2))):
        kx, ky = next(iter(k_audio(folder, label_mode=mode, batch_size=8, shuffle=False)))
        x, y = first(bf_audio(folder, label_mode=mode, channel_axis=True, **kw))
        assert kx.shape.rank == x.ndim == 3 and x.shape[0] == 8 and x.shape[-1] == 1
        assert tuple(ky.shape) == y.shape == shape and y.dtype == np.float32


def test_audio_same_lengths_give_one_shape(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16)
    assert len({b.shape[1] for b, _ in k_audio(folder, batch_size=2)}) == 1
    stream = bf_audio(folder, batch_size=2, output_sequence_length=None)
    assert len({x.shape[1] for x, _ in stream}) == 1


AUDIO_ERRORS = [
    (
        {"output_sequence_length": 10, "sampling_rate": -1},
        "`sampling_rate` should be higher than 0",
        "sample_rate must be an int > 0",
    ),
    (
        {"output_sequence_length": 10, "sampling_rate": 1.2},
        "`sampling_rate` should have an integer value",
        "sample_rate must be an int > 0",
    ),
    (
        {"ragged": True, "output_sequence_length": 30},
        "Cannot set both `ragged` and `output_sequence_length`",
        "ragged=True has no bytefeed equivalent",
    ),
    *ERRORS,
]


@pytest.mark.parametrize(("kwargs", "keras_message", "message"), AUDIO_ERRORS)
def test_audio_errors(tmp_path, kwargs, keras_message, message):
    folder = audio_folder(tmp_path / "d", num_classes=3, count=5)
    with pytest.raises(ValueError, match=re.escape(keras_message)):
        k_audio(folder, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        bf_dir(folder, "audio", **kwargs)


def test_audio_resampling_needs_no_tensorflow_io(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=3, count=5)
    if importlib.util.find_spec("tensorflow_io") is None:  # Keras resamples only with it
        with pytest.raises(ImportError, match="tensorflow_io"):
            k_audio(folder, output_sequence_length=10, sampling_rate=44100)
    # bytefeed resamples with soxr: 30 samples at 1000 Hz become 1323 at 44.1 kHz
    x, _ = first(bf_dir(folder, "audio", output_sequence_length=None, sampling_rate=44100))
    assert x.shape[1] == 1323


def test_audio_not_batched_is_refused(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=2)
    kd = k_audio(folder, batch_size=None, output_sequence_length=30, label_mode=None,
                 shuffle=False)  # fmt: skip
    assert len(next(iter(kd)).shape) == 2
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        bf_audio(folder, batch_size=None, output_sequence_length=30, label_mode=None)


# --- text_dataset_utils_test -----------------------------------------------------------------
def k_text(folder, **kw):
    return keras.utils.text_dataset_from_directory(os.fspath(folder), verbose=False, **kw)


def bf_text(folder, **kw):
    kw.setdefault("output", "text")  # Keras's raw strings; bytefeed's default is token ids
    return bf_dir(folder, "text", **kw)


def test_text_standalone_no_labels(tmp_path):
    folder = text_folder(tmp_path / "d", count=7, num_classes=2)
    rnd = random.Random(9)
    for i in range(3):
        text = "".join(rnd.choice(string.printable) for _ in range(20))
        (folder / f"text_{i}.txt").write_text(text, newline="")
    kd = k_text(folder, batch_size=5, label_mode=None, max_length=10)
    stream = bf_text(folder, batch_size=5, label_mode=None, max_length=10)
    kx, x = next(iter(kd)), first(stream)
    assert list(kx.shape) == list(x.shape) == [5] and kx.dtype == x.dtype == tf.string
    k_batches, batches = list(kd), epoch(stream)
    assert len(k_batches) == len(batches) == 2
    assert sum(len(b) for b in k_batches) == n_samples(batches) == 10


def test_text_max_length_counts_characters(tmp_path):
    folder = text_folder(tmp_path / "d", num_classes=2)
    kw = {"batch_size": 8, "label_mode": "int", "max_length": 10, "shuffle": False}
    kx, ky = next(iter(k_text(folder, **kw)))
    x, y = first(bf_text(folder, **kw))
    assert list(kx.shape) == list(x.shape) == [8] and len(kx.numpy()[0]) == 10
    assert ky.dtype == tf.int32 and y.dtype == np.int32 and ky.numpy().tolist() == y.tolist()
    # Keras cuts the first 10 bytes; bytefeed the first 10 characters of the decoded text,
    # whose line ends are "\n" (string.printable holds "\r"): the same file, read as text
    paths = bf_text(folder, **kw).engine.source.manifest.paths[:8]
    for got, path in zip(x.numpy(), paths, strict=True):
        text = re.sub("\r\n?", "\n", Path(path).read_bytes().decode())
        assert got.decode() == text[:10]
    # a character of several bytes is never cut in two
    (folder / "class_0" / "text_wide.txt").write_text("é" * 20, encoding="utf-8")
    docs = [d.decode() for b, _ in bf_text(folder, **kw) for d in b.numpy()]
    assert "é" * 10 in docs


def test_text_label_modes(tmp_path):
    folder = text_folder(tmp_path / "d", num_classes=2)
    for mode, shape in (("binary", [8, 1]), ("categorical", [8, 2])):
        kx, ky = next(iter(k_text(folder, batch_size=8, label_mode=mode)))
        x, y = first(bf_text(folder, batch_size=8, label_mode=mode))
        assert list(kx.shape) == list(x.shape) == [8] and x.dtype == tf.string
        assert list(ky.shape) == list(y.shape) == shape and y.dtype == np.float32


def test_text_sample_count_and_multiclass(tmp_path):
    folder = text_folder(tmp_path / "d", num_classes=4, count=15)
    assert sum(len(b) for b in k_text(folder, batch_size=8, label_mode=None)) == 15
    assert n_samples(epoch(bf_text(folder, batch_size=8, label_mode=None))) == 15
    for mode, shape in (("int", [8]), ("categorical", [8, 4])):
        _, ky = next(iter(k_text(folder, batch_size=8, label_mode=mode)))
        x, y = first(bf_text(folder, batch_size=8, label_mode=mode))
        assert len(x) == 8 and list(ky.shape) == list(y.shape) == shape


def test_text_validation_split(tmp_path):
    folder = text_folder(tmp_path / "d", num_classes=2, count=10)
    kw = {"batch_size": 10, "validation_split": 0.2, "seed": 1337}
    for subset, n in (("training", 8), ("validation", 2)):
        kx, _ = next(iter(k_text(folder, subset=subset, **kw)))
        x, _ = first(bf_text(folder, subset=subset, **kw))
        assert len(kx) == len(x) == n
    k_train, k_val = k_text(folder, subset="both", **kw)
    train, val = bf_text(folder, subset="both", **kw)
    assert len(next(iter(k_train))[0]) == len(first(train)[0]) == 8
    assert len(next(iter(k_val))[0]) == len(first(val)[0]) == 2


def test_text_manual_labels_nested_folders_and_no_files(tmp_path):
    folder = text_folder(tmp_path / "two", num_classes=2, count=2)
    kw = {"batch_size": 8, "labels": [0, 1], "shuffle": False}
    assert next(iter(k_text(folder, **kw)))[1].numpy().tolist() == [0, 1]
    assert first(bf_text(folder, **kw))[1].tolist() == [0, 1]
    nested = text_folder(tmp_path / "nested", num_classes=2, count=25, nested_dirs=True)
    kw = {"batch_size": 8, "label_mode": None, "follow_links": True}
    assert (
        sum(len(b) for b in k_text(nested, **kw)) == n_samples(epoch(bf_text(nested, **kw))) == 25
    )
    empty = text_folder(tmp_path / "empty", num_classes=2, count=0)
    with pytest.raises(ValueError, match="No text files found"):
        k_text(empty)
    with pytest.raises(ValueError, match="No text files found"):
        bf_text(empty)


@pytest.mark.parametrize(("kwargs", "keras_message", "message"), ERRORS)
def test_text_errors(tmp_path, kwargs, keras_message, message):
    folder = text_folder(tmp_path / "d", num_classes=3, count=5)
    with pytest.raises(ValueError, match=re.escape(keras_message)):
        k_text(folder, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        bf_text(folder, **kwargs)


def test_text_not_batched_is_refused(tmp_path):
    folder = text_folder(tmp_path / "d")
    sample = next(iter(k_text(folder, batch_size=None, label_mode=None)))
    assert len(sample.shape) == 0
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        bf_text(folder, batch_size=None, label_mode=None)


# --- py_dataset_adapter_test -----------------------------------------------------------------
@pytest.fixture
def numbers(tmp_path):
    """64 one-sample audio "clips" holding their own index, as ``ExamplePyDataset`` holds
    x = random, y = [i, i]: each batch shows which samples it carries, and in what order."""
    folder = tmp_path / "numbers"
    (folder / "class_0").mkdir(parents=True)
    for i in range(64):
        sf.write(folder / "class_0" / f"{i:02d}.wav", np.full((4, 1), i / 100), 1000,
                 subtype="FLOAT")  # fmt: skip
    return folder


def numbers_stream(folder, **kw):
    return bf_dir(folder, "audio", batch_size=16, sampling_rate=1000, duration=0.004, **kw)


def sample_ids(x) -> list[int]:
    return np.rint(np.asarray(x)[:, 0] * 100).astype(int).tolist()


@pytest.mark.parametrize("iterator", ["tf", "numpy"])
@pytest.mark.parametrize("keras_shuffle", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_pydataset_basic_flow(numbers, iterator, keras_shuffle, shuffle):
    stream = numbers_stream(numbers, shuffle=shuffle, seed=1337)
    adapter = py_dataset_adapter.PyDatasetAdapter(stream, shuffle=keras_shuffle)
    # made before the epoch begins, as in Keras's test (and in fit)
    it, kind = (
        (adapter.get_tf_dataset(), tf.Tensor)
        if iterator == "tf"
        else (adapter.get_numpy_iterator(), np.ndarray)
    )
    order = []
    adapter.on_epoch_begin()
    for bx, by in it:
        assert isinstance(bx, kind) and isinstance(by, kind)
        assert tuple(bx.shape) == (16, 4) and tuple(by.shape) == (16,)
        # Keras's example has float32 x and y; a stream's int labels are int32
        assert "float32" in str(bx.dtype) and "int32" in str(by.dtype)
        order += sample_ids(bx)
    adapter.on_epoch_end()
    assert sorted(order) == list(range(64))  # every sample once
    # Keras's own index shuffling (fit(shuffle=True)) has no effect: the stream reshuffles
    # itself every epoch, from its seed, or keeps its order with shuffle=False
    assert (order == list(range(64))) == (not shuffle)


def test_pydataset_is_finite_with_num_batches(numbers):
    stream = numbers_stream(numbers, shuffle=False)
    # Keras's infinite datasets (num_batches None) have no equivalent: a stream is an epoch
    assert stream.num_batches == len(stream) == 4
    assert len([b for b in stream]) == 4  # test_iterate_finite


def test_pydataset_class_weight(tmp_path):
    folder = text_folder(tmp_path / "d", num_classes=3, count=4)
    stream = bf_text(folder, batch_size=2, shuffle=False)
    class_w = {0: 2, 1: 1, 2: 3}
    adapter = py_dataset_adapter.PyDatasetAdapter(stream, shuffle=False, class_weight=class_w)
    batches = list(adapter.get_tf_dataset())
    assert len(batches) == 2
    for batch in batches:
        assert len(batch) == 3  # (x, y, class weights as sample weights)
        y, w = batch[1].numpy(), batch[2].numpy()
        assert w.tolist() == [class_w[int(v)] for v in y]


def test_pydataset_workers_stay_one(numbers):
    # test_speedup runs Keras's workers; a stream decodes on its own threads (workers= when
    # building it), and refuses Keras's, which would read its batches out of order
    stream = numbers_stream(numbers, shuffle=False)
    with pytest.raises(ValueError, match="workers must stay 1"):
        stream.workers = 4
    with pytest.raises(ValueError, match="use_multiprocessing must stay False"):
        stream.use_multiprocessing = True
    assert stream.engine.workers == WORKERS


def test_pydataset_dict_inputs(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16, different_lengths=True)
    stream = bf_audio(folder, batch_size=4, output_sequence_length=None, lengths=True,
                      shuffle=False)  # fmt: skip
    adapter = py_dataset_adapter.PyDatasetAdapter(stream, shuffle=False)
    for x, y in adapter.get_numpy_iterator():
        assert set(x) == {"audio", "lengths"} and isinstance(x["audio"], np.ndarray)
        assert x["audio"].shape == (4, x["lengths"].max()) and y.shape == (4,)
    for x, _ in adapter.get_tf_dataset():
        assert isinstance(x["audio"], tf.Tensor) and x["lengths"].dtype == tf.int32


def test_pydataset_with_different_shapes(tmp_path):
    folder = audio_folder(tmp_path / "d", num_classes=2, count=16, different_lengths=True)
    stream = bf_audio(folder, batch_size=6, output_sequence_length=None, shuffle=False)
    adapter = py_dataset_adapter.PyDatasetAdapter(stream, shuffle=False)
    shapes = [tuple(x.shape) for x, _ in adapter.get_tf_dataset()]
    assert [s[0] for s in shapes] == [6, 6, 4]  # the last batch short, as Keras's example
    assert len({s[1] for s in shapes}) > 1  # each batch padded to its own longest clip


def test_pydataset_exception_reported(tmp_path):
    folder = image_folder(tmp_path / "d", num_classes=1, count=4)
    (folder / "class_0" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    stream = bf_dir(folder, "image", batch_size=2, image_size=8, shuffle=False, on_error="raise")
    it = iter(py_dataset_adapter.PyDatasetAdapter(stream, shuffle=False).get_numpy_iterator())
    next(it)
    next(it)  # the first two batches hold good files
    with pytest.raises(BadFileError, match=r"zz_broken\.jpg"):
        next(it)
    # with the default on_error="skip" the file is a record, and the epoch goes on
    stream = bf_dir(folder, "image", batch_size=2, image_size=8, shuffle=False)
    assert n_samples(epoch(stream)) == 4 and [e.reason for e in stream.errors]


# --- the README's table ------------------------------------------------------------------------
def test_the_readme_table_lists_every_argument_of_the_three_functions():
    import inspect

    from support import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Coming from Keras", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([IAT ]+) \|", section, flags=re.M)
    listed = {name: set(where.split()) for name, where in rows}
    takes = {
        letter: set(inspect.signature(function).parameters)
        for letter, function in (
            ("I", keras.utils.image_dataset_from_directory),
            ("A", keras.utils.audio_dataset_from_directory),
            ("T", keras.utils.text_dataset_from_directory),
        )
    }
    for letter, names in takes.items():  # every argument, in the row of each function
        assert all(letter in listed.get(name, set()) for name in names), (letter, names)
    for name, where in listed.items():  # and no row claims an argument Keras does not have
        assert all(name in takes[letter] for letter in where), name
