"""The explorer widget, driven by setting widget values (no browser, no kernel)."""

from __future__ import annotations

import os

import ipywidgets
import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import (
    AudioAugment,
    ImageAugment,
    audio_batches,
    build_manifest,
    image_batches,
    text_batches,
)
from bytefeed_helpers.notebook import explore


def manifest(kind: str, step: int):
    m = build_manifest(
        DATA / {"image": "images", "audio": "audio", "text": "text"}[kind],
        kind=kind,
        progress=False,
    )
    return m.subset(range(0, len(m), step))


@pytest.fixture(scope="module")
def photos():
    return manifest("image", 4)  # 18 photos of 3 classes


def png(explorer) -> str:
    first = explorer.output.outputs[0]
    return first["data"]["image/png"]


def test_image_explorer_steps_through_batches_without_moving_the_stream(photos):
    s = image_batches(photos, batch_size=6, image_size=(32, 32), seed=1, with_paths=True)
    e = explore(s, augment=ImageAugment(rotation=0.05))
    assert isinstance(e, ipywidgets.VBox) and e.output in e.children
    assert e.renders == 1 and e.last["batch"] == 0 and e.last["shown"] == 6
    assert e.batch_slider.max == len(s) - 1 == 2
    first = png(e)
    e.batch_slider.value = 2
    assert e.renders == 2 and e.last["batch"] == 2 and png(e) != first
    assert "batch 3 of 3" in e.status.value
    _, _, paths = s[2]  # the explorer showed the stream's own batch 2 of this epoch
    assert e.last["paths"] == list(paths)
    assert s.epoch == 0 and s.engine.position == 0 and not s.errors


def test_class_picker_filters_the_batch(photos):
    s = image_batches(photos, batch_size=9, image_size=(24, 24), seed=2)
    e = explore(s)
    e.class_picker.value = 1  # "coffee"
    folders = {os.path.basename(os.path.dirname(p)) for p in e.last["paths"]}
    assert folders <= {"coffee"} and e.last["label"] == 1
    _, y = s[0]
    assert e.last["shown"] == int((y == 1).sum())
    assert "'coffee'" in e.status.value


def test_toggle_and_sliders_drive_the_augmenter(photos):
    s = image_batches(photos, batch_size=6, image_size=(32, 32), seed=3)
    aug = ImageAugment(flip=None, zoom=(0.1, 0.1))
    e = explore(s, augment=aug)
    assert e.augment_toggle.value and e.last["augmented"]
    assert set(e.sliders) == {"rotation", "translation", "zoom", "shear", "brightness", "contrast"}
    assert e.sliders["zoom"].value == pytest.approx(0.1)
    augmented = e.last["x"]
    e.augment_toggle.value = False
    plain = e.last["x"]
    assert not e.last["augmented"] and not np.array_equal(plain, augmented)
    assert np.array_equal(plain, s[0][0])  # off: exactly the stream's batch
    e.augment_toggle.value = True
    renders = e.renders
    e.sliders["rotation"].value = 0.2
    e.sliders["zoom"].value = 0.3
    assert aug.rotation == pytest.approx(0.2) and aug.zoom == (0.3, 0.3)  # a pair stays a pair
    assert e.renders == renders + 2 and not np.array_equal(e.last["x"], augmented)


def test_stream_augmenter_is_the_default_and_its_state_shows(photos):
    aug = ImageAugment(brightness=0.3)
    training = image_batches(photos, batch_size=6, image_size=(16, 16), seed=4, augment=aug)
    e = explore(training)
    assert e.augment is aug and e.augment_toggle.value
    assert e.sliders["brightness"].value == pytest.approx(0.3)
    bare = explore(image_batches(photos, batch_size=6, image_size=(16, 16), seed=4))
    assert isinstance(bare.augment, ImageAugment) and not bare.augment_toggle.value
    assert not bare.last["augmented"]


def test_a_class_missing_from_the_batch_says_so():
    m = manifest("image", 4)
    s = image_batches(m, batch_size=2, image_size=(16, 16), shuffle=False)  # batch 0: two cats
    e = explore(s)
    e.class_picker.value = 2
    assert e.last["shown"] == 0
    assert e.output.outputs[0]["output_type"] == "stream"
    assert "0 sample(s)" in e.output.outputs[0]["text"]


def test_broken_files_are_counted_not_fatal():
    s = image_batches(DATA / "broken" / "images.csv", batch_size=14, image_size=(16, 16))
    e = explore(s)
    assert e.last["skipped"] == 4 and e.last["shown"] == 10
    assert not s.errors  # the explorer leaves the stream's records alone


def test_audio_explorer_waveforms_players_and_sliders():
    s = audio_batches(manifest("audio", 4), batch_size=4, duration=0.5, seed=1)
    e = explore(s)
    assert isinstance(e.augment, AudioAugment) and not e.augment_toggle.value
    assert set(e.sliders) == {"gain_db", "shift", "noise_snr_db"}
    kinds = [list(o["data"]) for o in e.output.outputs]
    assert "image/png" in kinds[0] and sum("text/html" in k for k in kinds) == 4
    assert "<audio" in e.output.outputs[1]["data"]["text/html"]
    e.sliders["gain_db"].value = 0
    e.sliders["noise_snr_db"].value = 10
    assert e.augment.gain_db is None and e.augment.noise_snr_db == (10, 10)
    plain = e.last["x"]
    e.augment_toggle.value = True
    assert not np.array_equal(e.last["x"], plain)
    e.sliders["noise_snr_db"].value = e.sliders["noise_snr_db"].max
    assert e.augment.noise_snr_db is None


def test_logmel_explorer_has_mask_sliders():
    aug = AudioAugment(time_masks=1, freq_masks=2)
    s = audio_batches(manifest("audio", 6), 4, duration=0.5, features="logmel", augment=aug, seed=2)
    e = explore(s)
    assert e.last["x"].ndim == 3 and e.augment_toggle.value
    assert e.sliders["freq_masks"].value == 2 and isinstance(e.sliders["time_masks"].value, int)
    e.sliders["time_masks"].value = 3
    assert aug.time_masks == 3
    assert len(e.output.outputs) == 1  # a spectrogram figure, no players for features


def test_text_explorer_shows_a_token_table_without_augmentation():
    s = text_batches(manifest("text", 3), batch_size=4, seed=0)
    e = explore(s)
    assert e.augment is None and e.augment_toggle.disabled and e.sliders == {}
    assert e.last["x"].dtype == np.int32 and "image/png" in e.output.outputs[0]["data"]
    first = png(e)
    e.batch_slider.value = 1
    assert png(e) != first
    fig = e.figure()  # a static copy of the current view, e.g. for saved notebooks
    assert fig is not None and fig.axes[0].tables


def test_explorer_controls_fit_count_truly_and_fall_back_to_text(photos):
    """Controls wrap instead of squeezing, render on release, count from 1 like the status
    line, are disabled while they would do nothing; the count says what is drawn; a saved
    notebook without a kernel reads a sentence."""
    s = image_batches(photos, batch_size=6, image_size=(32, 32), seed=1)
    e = explore(s, augment=ImageAugment(rotation=0.05), n=4)
    assert not e.batch_slider.continuous_update and not e.batch_slider.readout
    assert all(not w.continuous_update for w in e.sliders.values())
    rows = [c for c in e.children if isinstance(c, ipywidgets.HBox)]
    assert rows and all(r.layout.flex_flow == "row wrap" for r in rows)
    assert all(w.layout.min_width == w.layout.width for w in e.sliders.values())
    e.batch_slider.value = 2
    assert e.batch_label.value == "3 of 3" and "batch 3 of 3" in e.status.value
    assert e.last["shown"] == 6 and "4 of 6 sample(s) shown" in e.status.value
    assert not any(w.disabled for w in e.sliders.values())
    e.augment_toggle.value = False
    assert all(w.disabled for w in e.sliders.values())
    e.augment_toggle.value = True
    assert not any(w.disabled for w in e.sliders.values())
    text = e._repr_mimebundle_()["text/plain"]
    assert "run the notebook to use the explorer" in text
