"""Static matplotlib views of batches: image grids, waveforms and spectrograms, token tables.

Every function draws one new figure and returns it (``plt.show()`` in a notebook shows it;
``fig.savefig`` saves it); none needs a display, so they work headless on the Agg backend.
Inputs are the arrays a stream yields; at most ``n`` samples are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.table import Table
from matplotlib.transforms import Bbox

OK, WRONG = "#1a7f37", "#cf222e"
PAD = "·"


# --- shared helpers ----------------------------------------------------------------------------
def _label_text(label: int, class_names: Sequence[str] | None) -> str:
    if label < 0:
        return "unlabelled"
    if class_names is not None and label < len(class_names):
        return str(class_names[label])
    return str(label)


def _as_ids(values: Any, n: int) -> np.ndarray | None:
    """Label ids ``[n]`` from ids or from scores ``[n, classes]`` (argmax); None stays None."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim == 2:
        values = values.argmax(axis=1)
    return values.reshape(-1)[:n].astype(np.int64)


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image ``imshow`` draws faithfully: uint8 as is, floats scaled to [0, 1]."""
    if image.dtype == np.uint8:
        return image[..., 0] if image.shape[-1] == 1 else image
    image = image.astype(np.float32)
    if image.size and image.max() > 1.0:  # 0-255 floats, as image_batches(dtype="float32")
        image = image / 255.0
    image = np.clip(image, 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


def _grid(n: int, cols: int, cell: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


# --- images ------------------------------------------------------------------------------------
def show_batch(
    x: np.ndarray,
    y: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    n: int = 16,
    cols: int = 8,
    titles: Sequence[str] | None = None,
    predictions: np.ndarray | None = None,
) -> Figure:
    """A grid of the first ``n`` images of a batch, titled with their labels.

    ``x`` is ``[B, H, W, C]`` (``C`` 1 or 3; uint8, or floats in 0-1 or 0-255); ``y`` label
    ids ``[B]`` (-1 = unlabelled) named by ``class_names``. ``titles`` replaces the labels.
    With ``predictions`` (ids ``[B]`` or scores ``[B, classes]``) each title reads
    "predicted (true)" in green when right and red when wrong.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"show_batch expects images [B, H, W, C], not shape {x.shape}")
    n = min(n, len(x))
    fig, axes = _grid(max(n, 1), cols, (1.6, 1.8))
    labels, guesses = _as_ids(y, n), _as_ids(predictions, n)
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(_displayable(x[i]), cmap="gray" if x.shape[-1] == 1 else None)
        color = "black"
        if titles is not None:
            text = str(titles[i])
        elif guesses is not None:
            text = _label_text(int(guesses[i]), class_names)
            if labels is not None:
                text += f"\n({_label_text(int(labels[i]), class_names)})"
                color = OK if guesses[i] == labels[i] else WRONG
        elif labels is not None:
            text = _label_text(int(labels[i]), class_names)
        else:
            text = ""
        ax.set_title(text, fontsize=8, color=color)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "empty batch", ha="center", va="center")
    return fig


def compare_batches(
    original: np.ndarray,
    augmented: np.ndarray,
    *,
    n: int = 8,
    sample_rate: int | None = None,
    names: tuple[str, str] = ("original", "augmented"),
) -> Figure:
    """Original and augmented samples side by side: one column per sample, one row each.

    Images ``[B, H, W, C]`` are drawn as pictures, log-mels ``[B, frames, n_mels]`` as
    spectrograms, waveforms ``[B, N]`` as traces (time in seconds with ``sample_rate``).
    Both batches must have the same shape.
    """
    original, augmented = np.asarray(original), np.asarray(augmented)
    if original.shape != augmented.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {augmented.shape}")
    if original.ndim not in (2, 3, 4):
        raise ValueError(f"expected images, log-mels or waveforms, not shape {original.shape}")
    n = max(1, min(n, len(original)))
    cell = (1.8, 1.9) if original.ndim == 4 else (2.6, 1.6)
    fig, axes = plt.subplots(
        2, n, figsize=(cell[0] * n, cell[1] * 2), squeeze=False, layout="constrained"
    )
    low, high = (
        float(min(original.min(), augmented.min())),
        float(max(original.max(), augmented.max())),
    )
    for row, (name, batch) in enumerate(zip(names, (original, augmented), strict=True)):
        for i in range(n):
            ax = axes[row, i]
            if batch.ndim == 4:
                ax.imshow(_displayable(batch[i]), cmap="gray" if batch.shape[-1] == 1 else None)
                ax.axis("off")
            elif batch.ndim == 3:
                ax.imshow(batch[i].T, origin="lower", aspect="auto", vmin=low, vmax=high)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                t = np.arange(batch.shape[1]) / (sample_rate or 1)
                ax.plot(t, batch[i], lw=0.5)
                ax.set_ylim(min(low, -1e-3) * 1.05, max(high, 1e-3) * 1.05)
                ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(name, fontsize=9, loc="left")
    return fig


# --- audio -------------------------------------------------------------------------------------
def show_audio(
    x: np.ndarray,
    sample_rate: int,
    *,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    n: int = 4,
    player: bool = True,
    hop_length: int = 160,
) -> Figure:
    """Waveform and log-mel spectrogram of the first ``n`` clips, one row per clip.

    ``x`` is waveforms ``float32 [B, N]`` at ``sample_rate`` (spectrograms are computed with
    ``bytefeed_helpers.logmel``), or log-mels ``[B, frames, n_mels]`` already (drawn alone;
    ``hop_length`` converts frames to seconds). With ``player=True`` and running inside
    IPython, an audio player per waveform is displayed too (skipped silently elsewhere).
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"show_audio expects [B, N] or [B, frames, n_mels], not {x.shape}")
    n = max(1, min(n, len(x)))
    waves = x.ndim == 2
    if waves and len(x):
        from ..decoders.audio import logmel

        mels = logmel(x[:n].astype(np.float32), sample_rate, hop_length=hop_length)
    else:
        mels = x[:n]
    ids = _as_ids(labels, n)
    cols = 2 if waves else 1
    fig, axes = plt.subplots(
        n, cols, figsize=(4.2 * cols, 1.7 * n), squeeze=False, layout="constrained"
    )
    for i in range(min(n, len(x))):
        name = _label_text(int(ids[i]), class_names) if ids is not None else f"clip {i}"
        if waves:
            ax = axes[i, 0]
            ax.plot(np.arange(x.shape[1]) / sample_rate, x[i], lw=0.5)
            ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel(name, fontsize=8)
            ax.tick_params(labelsize=7)
        ax = axes[i, cols - 1]
        seconds = mels.shape[1] * hop_length / sample_rate
        ax.imshow(mels[i].T, origin="lower", aspect="auto", extent=(0, seconds, 0, mels.shape[2]))
        ax.tick_params(labelsize=7)
        if not waves:
            ax.set_ylabel(name, fontsize=8)
    axes[0, 0].set_title("waveform" if waves else "log-mel", fontsize=9)
    if waves:
        axes[0, 1].set_title("log-mel (mel bins over seconds)", fontsize=9)
    axes[-1, 0].set_xlabel("seconds", fontsize=8)
    if player and waves:
        audio_players(x[:n], sample_rate)
    return fig


def audio_players(x: np.ndarray, sample_rate: int) -> list[Any]:
    """Display an ``IPython.display.Audio`` player per waveform when inside IPython.

    Returns the players (empty outside IPython). Samples are clipped to [-1, 1] and not
    rescaled, so loudness differences stay audible.
    """
    if not _in_ipython():
        return []
    from IPython.display import Audio, display

    players = [Audio(np.clip(clip, -1.0, 1.0), rate=sample_rate, normalize=False) for clip in x]
    for p in players:
        display(p)
    return players


def show_waveforms(
    waves: Mapping[str, np.ndarray],
    sample_rates: int | Mapping[str, int],
    *,
    title: str | None = None,
) -> Figure:
    """Stages of one clip, one row each, on a shared time axis in seconds.

    ``waves`` maps a stage name ("original 44.1 kHz stereo", "resampled", "cropped to 1 s",
    "padded") to its samples ``[N]`` or ``[N, channels]``; ``sample_rates`` is one rate for
    all or a mapping with the same keys. Each row's title gives its samples and rate, so
    resampling, cropping and padding show as changes in length and rate over the same time.
    """
    if not waves:
        raise ValueError("no waveforms to show")
    rates = {k: sample_rates for k in waves} if isinstance(sample_rates, int) else sample_rates
    fig, axes = plt.subplots(
        len(waves),
        1,
        figsize=(8, 1.6 * len(waves)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    for ax, (name, wave) in zip(axes[:, 0], waves.items(), strict=True):
        wave = np.asarray(wave)
        rate = int(rates[name])
        t = np.arange(wave.shape[0]) / rate
        ax.plot(t, wave, lw=0.5)
        channels = "" if wave.ndim == 1 else f", {wave.shape[1]} channels"
        ax.set_title(
            f"{name}: {wave.shape[0]} samples at {rate} Hz = {wave.shape[0] / rate:.3f} s"
            f"{channels}",
            fontsize=9,
            loc="left",
        )
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title)
    return fig


# --- text --------------------------------------------------------------------------------------
def _word_lookup(tokenizer: Any) -> Callable[[int], str] | None:
    """id -> word from a tokenizer's vocabulary list, ``get_vocabulary()`` or ``decode``."""
    if tokenizer is None:
        return None
    vocab = getattr(tokenizer, "vocabulary", None)
    if vocab is None and hasattr(tokenizer, "get_vocabulary"):
        vocab = tokenizer.get_vocabulary()  # keras.layers.TextVectorization
    if isinstance(vocab, Mapping):  # word -> id
        vocab = {int(i): w for w, i in vocab.items()}
        return lambda i: str(vocab.get(i, "?"))
    if vocab is not None and not callable(vocab):
        words = list(vocab)
        return lambda i: str(words[i]) if 0 <= i < len(words) else "?"
    if hasattr(tokenizer, "decode"):
        return lambda i: str(tokenizer.decode([i])[0])
    return None


#: Token-table text size in points: 13.9 px in a notebook (the inline backend draws at
#: 100 dpi) and 12.5 px in the explorer's 90-dpi views.
TABLE_FONT_PT = 10.0
#: The widest token table, in inches (850 px at 100 dpi): what JupyterLab shows at full size
#: beside its file browser in a 1280-px window. A wider figure is scaled down to the output
#: area, its text with it (a 15-inch table of 6.5 pt read as 6 px), so longer rows wrap into
#: blocks of positions instead.
NOTEBOOK_WIDTH_IN = 8.5
_CELL_PAD_IN = 0.16  # left and right padding of a cell's widest line, together
_MARGIN_IN = 0.05


def _text_width_in(text: str, size: float) -> float:
    """Width in inches of ``text``'s widest line drawn at ``size`` points (no renderer)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    font, measure = FontProperties(size=size), TextToPath()
    points = [
        measure.get_text_width_height_descent(t, font, ismath=False)[0] for t in text.split("\n")
    ]
    return max(points) / 72


def _blocks(widths: Sequence[float], room: float) -> list[list[int]]:
    """Column indices split into consecutive blocks that each fit ``room`` inches: as few
    blocks as greedy packing needs, their column counts as even as still fits."""
    greedy: list[list[int]] = [[]]
    used = 0.0
    for i, w in enumerate(widths):
        if greedy[-1] and used + w > room:
            greedy.append([])
            used = 0.0
        greedy[-1].append(i)
        used += w
    k, n = len(greedy), len(widths)
    even = [list(range(n * b // k, n * (b + 1) // k)) for b in range(k)]
    if all(sum(widths[i] for i in block) <= room for block in even):
        return even
    return greedy


def show_tokens(
    x: np.ndarray,
    tokenizer: Any = None,
    y: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    *,
    n: int = 8,
    max_tokens: int = 20,
) -> Figure:
    """A table of a padded token batch: one row per document, one column per position.

    ``x`` is ``int32 [B, T]`` token ids, 0 = padding (shown as "·"). With a ``tokenizer``
    that has a ``vocabulary`` (list or word->id dict), ``get_vocabulary()`` or ``decode``,
    each cell also shows the word (its first 9 letters). Rows are named by label (``y``,
    ``class_names``) and end with the document's real length; only the first ``max_tokens``
    positions are drawn. Text is ``TABLE_FONT_PT`` points and the figure at most
    ``NOTEBOOK_WIDTH_IN`` wide, so a notebook shows it unscaled: positions that do not fit
    in one row of tables continue in a block below (each block one table of the figure's
    one axes).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"show_tokens expects token ids [B, T], not shape {x.shape}")
    n, width = min(n, len(x)), min(max_tokens, x.shape[1])
    word = _word_lookup(tokenizer)
    ids = _as_ids(y, n)

    def cell(i: int) -> str:
        if i == 0:
            return PAD
        return f"{i}\n{word(i)[:9]}" if word else str(i)

    rows = [[cell(int(v)) for v in x[r, :width]] for r in range(n)]
    lengths = [str(int(np.count_nonzero(x[r]))) for r in range(n)]
    rows = [[*row, length] for row, length in zip(rows, lengths, strict=True)]
    names = [
        _label_text(int(ids[r]), class_names) if ids is not None else f"doc {r}" for r in range(n)
    ]
    header = [*(str(c) for c in range(width)), "length"]
    size = TABLE_FONT_PT

    def column_width(texts: Sequence[str]) -> float:
        return max(_text_width_in(t, size) for t in texts) + _CELL_PAD_IN

    widths = [column_width([header[c], *(r[c] for r in rows)]) for c in range(len(header))]
    label_w = column_width(["", *names])
    room = max(NOTEBOOK_WIDTH_IN - 2 * _MARGIN_IN - label_w, max(widths))
    blocks = _blocks(widths, room) if n else []
    line_in = 1.2 * size / 72  # one line of text and its leading
    header_h = line_in + 0.08
    row_h = (2 if word else 1) * line_in + 0.08
    block_h = header_h + n * row_h
    gap, title_h = 0.2, 0.4
    fig_w = 2 * _MARGIN_IN + label_w + max((sum(widths[i] for i in b) for b in blocks), default=2)
    fig_w = max(fig_w, 4.0)  # room for the title
    body_h = sum(block_h for _ in blocks) + gap * max(len(blocks) - 1, 0) + 2 * _MARGIN_IN
    fig = plt.figure(figsize=(fig_w, body_h + title_h))
    ax = fig.add_axes((0.0, 0.0, 1.0, body_h / (body_h + title_h)))
    ax.axis("off")
    top = body_h - _MARGIN_IN
    for block in blocks:
        bottom = top - block_h
        block_w = label_w + sum(widths[i] for i in block)
        table = Table(
            ax,
            bbox=Bbox.from_bounds(
                _MARGIN_IN / fig_w, bottom / body_h, block_w / fig_w, block_h / body_h
            ),
        )
        table.auto_set_font_size(False)  # our widths fit the text: never shrink it
        table.add_cell(0, 0, label_w, header_h, text="", loc="left", edgecolor="none")
        for col, i in enumerate(block, start=1):
            table.add_cell(0, col, widths[i], header_h, text=header[i], loc="center")
        for r in range(n):
            table.add_cell(r + 1, 0, label_w, row_h, text=names[r], loc="left", edgecolor="none")
            for col, i in enumerate(block, start=1):
                padding = rows[r][i] == PAD and i < width
                table.add_cell(
                    r + 1,
                    col,
                    widths[i],
                    row_h,
                    text=rows[r][i],
                    loc="center",
                    facecolor="#eeeeee" if padding else "white",
                )
        table.set_fontsize(size)
        ax.add_table(table)
        top = bottom - gap
    if not n:
        ax.text(0.5, 0.5, "empty batch", ha="center", va="center", fontsize=size)
    shown = f"first {width} of {x.shape[1]} positions" if width < x.shape[1] else "all positions"
    ax.set_title(
        f"token ids{' and words' if word else ''}, {shown}; {PAD} = padding (id 0)",
        fontsize=size + 1,
        loc="left",
        pad=8,
    )
    return fig
