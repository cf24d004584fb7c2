"""``from_directory``: Keras's one call, as bytefeed streams (the Keras scenarios themselves are
in test_keras_parity.py; these are bytefeed's own rules around them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import bytefeed_helpers as bf


@pytest.fixture
def photos(tmp_path):
    """Two classes of 10 small PNGs (a grey level per file, to tell them apart)."""
    root = tmp_path / "photos"
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            level = 10 * c + i
            Image.new("RGB", (12, 8), (level, level, level)).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture
def clips(tmp_path):
    root = tmp_path / "clips"
    for c, name in enumerate(("no", "yes")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            sf.write(root / name / f"{i}.wav", np.full(800 + 100 * i, 0.1 * (c + 1)), 8000)
    return root


@pytest.fixture
def documents(tmp_path):
    root = tmp_path / "docs"
    words = {"neg": "bad awful poor", "pos": "good great fine"}
    for name, text in words.items():
        (root / name).mkdir(parents=True)
        for i in range(6):
            (root / name / f"{i}.txt").write_text(f"{text} {name}{i}", encoding="utf-8")
    return root


def from_dir(folder, kind="image", **kw):
    kw.setdefault("workers", 1)
    return bf.from_directory(folder, kind, verbose=False, **kw)


def levels(stream) -> list[int]:
    return [int(v) for x, _ in stream for v in x[:, 0, 0, 0]]


def test_both_gives_a_shuffled_augmentable_train_and_an_ordered_val(photos):
    def flip(batch, rng):
        return batch[:, :, ::-1]

    train, val = from_dir(
        photos, image_size=8, batch_size=4, validation_split=0.2, subset="both", seed=3,
        augment=flip,
    )  # fmt: skip
    assert isinstance(train, bf.Stream) and isinstance(val, bf.Stream)
    assert train.engine.shuffle and train.augment is flip and train.augment_enabled
    assert not val.engine.shuffle and val.augment is None and not val.engine.training
    # every file once, in one part or the other; validation in manifest order
    seen = levels(train) + levels(val)
    assert sorted(seen) == list(range(20))
    assert levels(val) == sorted(levels(val)) and len(levels(val)) == 4  # 2 of each class
    assert train.class_names == val.class_names == ["cat", "dog"]


def test_training_and_validation_from_two_calls_do_not_overlap(photos):
    kw = {"image_size": 8, "validation_split": 0.3, "seed": 7}
    train = from_dir(photos, subset="training", **kw)
    val = from_dir(photos, subset="validation", **kw)
    assert sorted(levels(train) + levels(val)) == list(range(20))


def test_one_stream_without_a_split(photos, capsys):
    stream = bf.from_directory(photos, "image", image_size=8, shuffle=False, workers=1)
    assert len(stream.engine.source) == 20 and levels(stream) == list(range(20))
    assert capsys.readouterr().out == "Found 20 files belonging to 2 classes.\n"  # as Keras


def test_verbose_says_how_many_files_each_part_uses(photos, capsys):
    bf.from_directory(photos, image_size=8, validation_split=0.2, subset="both", seed=0)
    assert capsys.readouterr().out.splitlines() == [
        "Found 20 files belonging to 2 classes.",
        "Using 16 files for training.",
        "Using 4 files for validation.",
    ]


def test_without_shuffling_the_split_needs_no_seed(photos):
    one = from_dir(photos, image_size=8, validation_split=0.2, subset="validation", shuffle=False)
    two = from_dir(photos, image_size=8, validation_split=0.2, subset="validation", shuffle=False)
    assert levels(one) == levels(two)  # drawn from seed 0: two calls agree


def test_keras_names_are_translated(photos, clips):
    grey = from_dir(photos, image_size=8, color_mode="grayscale")
    assert grey[0][0].shape[-1] == 1 and grey.options["channels"] == 1
    rgba = from_dir(photos, image_size=8, color_mode="rgba")
    assert rgba[0][0].shape[-1] == 4 and (rgba[0][0][..., 3] == 255).all()  # opaque PNGs
    assert from_dir(photos, image_size=8, crop_to_aspect_ratio=True).options["fit"] == "crop"
    assert from_dir(photos, image_size=8, pad_to_aspect_ratio=True).options["fit"] == "pad"
    import keras

    auto = from_dir(photos, image_size=8, data_format=None)
    assert auto.options["data_format"] == keras.config.image_data_format()
    audio = from_dir(clips, "audio", sampling_rate=8000, output_sequence_length=400)
    assert audio.options["sample_rate"] == 8000 and audio[0][0].shape[1] == 400
    whole = from_dir(clips, "audio", sampling_rate=8000, output_sequence_length=None)
    assert whole.options["duration"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"color_mode": "rgb", "channels": 3}, "color_mode .* and channels set the same thing"),
        ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, "Only one of"),
        ({"format": "tf"}, "returns bytefeed streams"),
        ({"sampling_rate": 8000}, "sampling_rate is an option of audio streams"),
        ({"labels": [1, 2] * 10}, "labels must be class ids 0, 1, ..., C-1"),
        ({"labels": [True, False] * 10}, "`labels` argument should be"),
        ({"validation_split": "0.2", "subset": "both", "seed": 1}, "validation_split must be"),
        ({"subset": "both"}, "`validation_split` must be set"),
    ],
)
def test_wrong_arguments_raise_before_any_file_is_read(photos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_dir(photos, image_size=8, **kwargs)


def test_wrong_kind_and_missing_folder(photos, tmp_path):
    with pytest.raises(ValueError, match="kind must be one of 'image', 'audio', 'text'"):
        from_dir(photos, "video")
    with pytest.raises(FileNotFoundError):
        from_dir(tmp_path / "nowhere")


def test_a_folder_without_class_folders_needs_labels_none(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4)).save(flat / f"{i}.png")
    with pytest.raises(ValueError, match=r"No images found .*pass labels=None"):
        from_dir(flat, image_size=4)
    stream = from_dir(flat, image_size=4, labels=None)
    assert stream.class_names == [] and stream[0].shape == (3, 4, 4, 3)  # x alone


def test_label_mode_none_reads_any_tree_unlabelled(photos):
    Image.new("RGB", (12, 8)).save(photos / "loose.png")  # outside the class folders
    stream = from_dir(photos, image_size=8, label_mode=None)
    assert len(stream.engine.source) == 21 and stream[0].ndim == 4  # x alone, no labels


def test_a_validation_part_left_empty_is_an_error(tmp_path):
    root = tmp_path / "one"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "a" / "0.png")
    with pytest.raises(ValueError, match="No validation images found"):
        from_dir(root, image_size=4, validation_split=0.2, subset="both", seed=0)


def test_text_validation_shares_the_training_vocabulary(documents):
    train, val = from_dir(documents, "text", validation_split=0.34, subset="both", seed=0,
                          max_length=8)  # fmt: skip
    assert val.tokenizer is train.tokenizer
    held_out = {w for p in val.engine.source.manifest.paths for w in Path(p).read_text().split()}
    vocabulary = set(train.tokenizer.vocabulary)
    assert not {w for w in held_out if w[-1].isdigit()} & vocabulary  # only training words
    with pytest.raises(ValueError, match="needs the training stream's vocabulary"):
        from_dir(documents, "text", validation_split=0.34, subset="validation", seed=0)
    raw = from_dir(documents, "text", validation_split=0.34, subset="validation", seed=0,
                   output="text")  # fmt: skip
    assert raw[0][0].dtype.name == "string"


def test_audio_validation_crops_from_the_start(clips):
    train, val = from_dir(clips, "audio", sample_rate=8000, duration=0.1, crop="random",
                          validation_split=0.34, subset="both", seed=0)  # fmt: skip
    assert train.options["crop"] == "random" and val.options["crop"] == "start"


def test_resume_state_goes_to_the_training_stream_only(photos):
    train, _ = from_dir(photos, image_size=8, validation_split=0.2, subset="both", seed=1)
    for _ in zip(range(2), train, strict=False):
        pass
    state = train.state()
    again, val = from_dir(photos, image_size=8, validation_split=0.2, subset="both", seed=1,
                          resume=state)  # fmt: skip
    assert again.state() == state and val.state()["position"] == 0
