"""The static plots: each returns a Figure, headless, with the labels and values it claims."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from bytefeed_helpers import WordTokenizer
from bytefeed_helpers.notebook import (
    compare_batches,
    show_audio,
    show_batch,
    show_tokens,
    show_waveforms,
)
from bytefeed_helpers.notebook.plots import (
    NOTEBOOK_WIDTH_IN,
    OK,
    TABLE_FONT_PT,
    WRONG,
    audio_players,
)

NAMES = ["cat", "coffee", "rocket"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def images(b=6, h=12, w=10, c=3, dtype=np.uint8):
    x = np.random.default_rng(0).integers(0, 256, (b, h, w, c))
    return x.astype(dtype)


def titles(fig: Figure) -> list[str]:
    found = [ax.get_title(loc) for ax in fig.axes for loc in ("center", "left")]
    return [t for t in found if t]


def test_show_batch_titles_with_class_names_and_renders():
    fig = show_batch(images(), np.array([0, 1, 2, 0, -1, 2]), NAMES, n=16, cols=4)
    assert isinstance(fig, Figure)
    assert titles(fig) == ["cat", "coffee", "rocket", "cat", "unlabelled", "rocket"]
    assert sum(bool(ax.images) for ax in fig.axes) == 6 and len(fig.axes) == 8
    fig.canvas.draw()  # renders on Agg without a display


def test_show_batch_predictions_green_when_right_red_when_wrong():
    y = np.array([0, 1, 2, 1])
    scores = np.eye(3)[[0, 2, 2, 0]]  # right, wrong, right, wrong
    fig = show_batch(images(4), y, NAMES, predictions=scores)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes][:2] == ["cat\n(cat)", "rocket\n(coffee)"]
    colours = [matplotlib.colors.to_hex(ax.title.get_color()) for ax in axes]
    assert colours == [OK, WRONG, OK, WRONG]


def test_show_batch_float_gray_and_custom_titles():
    x = images(3, c=1, dtype=np.float32)  # 0-255 floats, one channel
    fig = show_batch(x, titles=["a", "b", "c"], n=2)
    assert titles(fig) == ["a", "b"]
    shown = fig.axes[0].images[0].get_array()
    assert shown.ndim == 2 and float(shown.max()) <= 1.0
    with pytest.raises(ValueError, match="B, H, W, C"):
        show_batch(x[0])
    assert isinstance(show_batch(x[:0]), Figure)  # an empty batch says so instead of failing


def test_compare_batches_images_logmels_and_waveforms():
    x = images(5)
    fig = compare_batches(x, x[:, :, ::-1], n=3)
    assert len(fig.axes) == 6 and titles(fig) == ["original", "augmented"]
    assert np.array_equal(fig.axes[3].images[0].get_array(), x[0, :, ::-1])
    mels = np.random.default_rng(1).normal(size=(4, 20, 8)).astype(np.float32)
    assert len(compare_batches(mels, mels * 0, n=2).axes) == 4
    waves = np.zeros((2, 160), np.float32)
    fig = compare_batches(waves, waves + 0.1, sample_rate=16000)
    assert fig.axes[0].lines[0].get_xdata()[-1] == pytest.approx(159 / 16000)
    with pytest.raises(ValueError, match="shapes differ"):
        compare_batches(x, x[:2])


def test_show_audio_waveform_and_logmel_per_clip():
    t = np.arange(8000) / 16000
    x = np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in (220, 440, 880)]).astype(np.float32)
    fig = show_audio(x, 16000, labels=np.array([0, 2, 1]), class_names=NAMES, n=2, player=True)
    assert len(fig.axes) == 4  # two clips x (waveform, spectrogram)
    assert [fig.axes[i].get_ylabel() for i in (0, 2)] == ["cat", "rocket"]
    mel = fig.axes[1].images[0].get_array()
    assert mel.shape == (64, 1 + 8000 // 160)
    assert fig.axes[0].lines[0].get_xdata()[-1] == pytest.approx(7999 / 16000)
    assert audio_players(x, 16000) == []  # outside IPython there is nothing to display


def test_show_audio_takes_logmels_as_they_are():
    mels = np.random.default_rng(0).normal(size=(3, 101, 40)).astype(np.float32)
    fig = show_audio(mels, 16000, n=3)
    assert len(fig.axes) == 3 and fig.axes[0].images[0].get_array().shape == (40, 101)
    with pytest.raises(ValueError):
        show_audio(mels[0, 0], 16000)


def test_show_waveforms_names_samples_and_rates():
    stages = {
        "original": np.zeros((44100, 2), np.float32),
        "resampled": np.zeros(16000, np.float32),
        "cropped": np.zeros(8000, np.float32),
    }
    fig = show_waveforms(stages, {"original": 44100, "resampled": 16000, "cropped": 16000})
    got = titles(fig)
    assert got[0].startswith("original: 44100 samples at 44100 Hz = 1.000 s, 2 channels")
    assert got[2] == "cropped: 8000 samples at 16000 Hz = 0.500 s"
    assert fig.axes[2].lines[0].get_xdata()[-1] == pytest.approx(7999 / 16000)
    assert len(show_waveforms({"a": np.zeros(10)}, 10).axes) == 1
    with pytest.raises(ValueError):
        show_waveforms({}, 16000)


def table_texts(fig: Figure) -> list[str]:
    return [
        cell.get_text().get_text()
        for table in fig.axes[0].tables
        for cell in table.get_celld().values()
    ]


def test_show_tokens_ids_words_padding_and_lengths():
    tok = WordTokenizer().fit(["the cat sat", "the dog"])
    x = np.array([tok("the cat sat"), np.r_[tok("the dog"), 0]], dtype=np.int32)
    fig = show_tokens(x, tok, y=np.array([1, 0]), class_names=["pets", "places"])
    cells = table_texts(fig)
    the = int(tok("the")[0])
    assert f"{the}\nthe" in cells and "·" in cells
    assert {"pets", "places", "length", "3", "2"} <= set(cells)
    fig.canvas.draw()


def test_show_tokens_without_tokenizer_and_truncated():
    x = np.arange(1, 61, dtype=np.int32).reshape(2, 30)
    fig = show_tokens(x, max_tokens=5)
    cells = table_texts(fig)
    assert "5" in cells and "6" not in cells  # ids 1..5 of row 0 shown, then the length 30
    assert "30" in cells and "first 5 of 30" in fig.axes[0].get_title("left")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        show_tokens(x[0])


def test_show_tokens_with_a_word_to_id_vocabulary():
    class Vocab:
        def __init__(self):
            self.vocabulary = {"": 0, "[UNK]": 1, "hello": 2}

    assert "2\nhello" in table_texts(show_tokens(np.array([[2, 0]]), Vocab()))


def test_show_tokens_is_readable_unscaled_in_a_notebook():
    """Issue 18: a 20-position table was 15 inches of 6.5-pt text, which JupyterLab scaled
    down to about 6 px. Now every cell is TABLE_FONT_PT (at least 12 px at the 100 dpi the
    inline backend draws at, and at the explorer's 90), the figure is at most
    NOTEBOOK_WIDTH_IN wide so it is shown unscaled, positions wrap into blocks, and no text
    spills out of its cell."""
    words = [f"word{i:05d}"[:9] for i in range(400)]  # nine letters: the widest a cell shows
    tok = type("Tok", (), {"vocabulary": ["", "[UNK]", *words]})()
    x = np.random.default_rng(0).integers(2, 402, size=(8, 59)).astype(np.int32)
    x[3, 12:] = 0  # a short document: padding from position 12
    fig = show_tokens(x, tok, y=np.arange(8) % 2, class_names=["constitution", "sonnets"])
    assert TABLE_FONT_PT * 90 / 72 >= 12  # px in the explorer's 90-dpi PNG; 100 dpi: more
    assert fig.get_figwidth() <= NOTEBOOK_WIDTH_IN
    tables = fig.axes[0].tables
    assert len(tables) >= 2  # 20 positions do not fit in one row of 8.5 inches
    cells = [c for t in tables for c in t.get_celld().values()]
    assert all(c.get_text().get_fontsize() == TABLE_FONT_PT for c in cells)
    lines = {line for c in cells for line in c.get_text().get_text().split("\n")}
    assert {str(p) for p in range(20)} | {"length", "·"} <= lines
    assert any(len(line) == 9 and line.startswith("word") for line in lines)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    for c in cells:
        box, text = c.get_window_extent(renderer), c.get_text().get_window_extent(renderer)
        assert box.x0 - 0.5 <= text.x0 and text.x1 <= box.x1 + 0.5, c.get_text().get_text()
    drawn = fig.get_tightbbox(renderer)  # nothing outside the figure: savefig without
    assert drawn.x1 <= fig.get_figwidth() + 0.01  # bbox_inches (the explorer) keeps it all
