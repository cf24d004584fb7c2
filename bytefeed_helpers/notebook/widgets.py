"""``explore(stream)``: step through a stream's batches with widgets, augmentation on or off.

The explorer rebuilds batch *k* of the stream's current epoch exactly as training would see
it (same files, same crops, same random augmentation for the same seed), on a private copy of
the engine: the stream itself, its cursor and its error list are left alone. Every view is a
static matplotlib figure placed in an ``Output`` widget as a PNG, so the widget works the same
in JupyterLab, in VS Code and in tests without a browser.
"""

from __future__ import annotations

import base64
import copy
import io
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..augment import AudioAugment, ImageAugment
from .plots import show_audio, show_batch, show_tokens

NOISE_OFF_DB = 60.0  # the noise slider's top end switches noise off

# attribute -> (label, max, step) of a strength slider (every slider starts at 0)
IMAGE_SLIDERS = {
    "rotation": ("rotation (turns)", 0.5, 0.005),
    "translation": ("translation", 0.5, 0.01),
    "zoom": ("zoom", 0.5, 0.01),
    "shear": ("shear", 0.5, 0.01),
    "brightness": ("brightness", 1.0, 0.01),
    "contrast": ("contrast", 1.0, 0.01),
}
AUDIO_SLIDERS = {
    "gain_db": ("gain ± dB", 24.0, 0.5),
    "shift": ("shift", 0.5, 0.01),
    "noise_snr_db": (f"SNR dB ({NOISE_OFF_DB:g}=off)", NOISE_OFF_DB, 1.0),
    "time_masks": ("time masks", 4, 1),
    "freq_masks": ("freq masks", 4, 1),
}


class Explorer(widgets.VBox):
    """The explorer widget; build it with ``explore``.

    Attributes (set their ``value`` to drive it from code):
        batch_slider: batch number within the current epoch.
        class_picker: show only samples of one class (-1: all).
        augment_toggle: whether the augmenter runs on the view.
        sliders: augmenter attribute -> slider moving its strength.
        output: the ``Output`` widget holding the rendered view.
        status: one line saying what is shown.
        renders: how many views have been rendered; ``last`` describes the latest
            (``batch``, ``label``, ``augmented``, ``shown`` samples, ``paths``).
    """

    def __init__(self, stream: Any, augment: Any = None, *, n: int | None = None):
        self.stream = stream
        self.augment = augment if augment is not None else stream.augment
        given = augment is not None or stream.augment_enabled
        if self.augment is None:
            self.augment = _default_augment(stream)
        self.n = n or {"image": 16, "audio": 4}.get(stream.kind, 8)
        self.renders = 0
        self.last: dict[str, Any] = {}
        # The value is ``stream[i]``'s index (from 0); people count from 1, so the slider shows
        # no readout of its own and ``batch_label`` says "3 of 4", like the status line.
        self.batch_slider = widgets.IntSlider(
            value=0,
            min=0,
            max=max(len(stream) - 1, 0),
            description="batch",
            continuous_update=False,  # render on release, not once per value dragged past
            readout=False,
            layout=widgets.Layout(width="300px"),
        )
        self.batch_label = widgets.Label()
        names = [("all classes", -1), *((c, i) for i, c in enumerate(stream.class_names))]
        self.class_picker = widgets.Dropdown(options=names, value=-1, description="class")
        self.augment_toggle = widgets.ToggleButton(
            value=bool(given and self.augment is not None),
            description="augmentation",
            disabled=self.augment is None,
        )
        self.sliders = self._make_sliders()
        self.status = widgets.HTML()
        self.output = widgets.Output()
        for w in (self.batch_slider, self.class_picker, self.augment_toggle):
            w.observe(self._changed, names="value")
        for w in self.sliders.values():
            w.observe(self._changed, names="value")
        self._enable_sliders()
        # rows that wrap instead of squeezing: at 1280 px the six image sliders take two rows
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        controls = widgets.HBox(
            [self.batch_slider, self.batch_label, self.class_picker, self.augment_toggle],
            layout=wrap,
        )
        strengths = widgets.HBox(list(self.sliders.values()), layout=wrap)
        super().__init__([controls, strengths, self.status, self.output])
        self.render()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # What a saved notebook shows where no live kernel draws the widget (GitHub, nbviewer,
        # a reopened notebook): a sentence, not "Explorer(children=...)".
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = (
                "Explorer of the stream's batches: run the notebook to use the explorer "
                "(it needs a live kernel)."
            )
        return data

    def _enable_sliders(self) -> None:
        """Strength sliders move only while augmentation is on (off, they would do nothing)."""
        off = not (self.augment_toggle.value and self.augment is not None)
        for slider in self.sliders.values():
            slider.disabled = off

    # --- strength sliders <-> the augmenter -------------------------------------------------
    def _make_sliders(self) -> dict[str, widgets.Widget]:
        table = (
            IMAGE_SLIDERS
            if isinstance(self.augment, ImageAugment)
            else AUDIO_SLIDERS
            if isinstance(self.augment, AudioAugment)
            else {}
        )
        if self.stream.options.get("features") != "logmel":  # masks act on log-mels only
            table = {k: v for k, v in table.items() if k not in ("time_masks", "freq_masks")}
        sliders: dict[str, widgets.Widget] = {}
        for attr, (label, top, step) in table.items():
            kind = widgets.IntSlider if isinstance(step, int) else widgets.FloatSlider
            sliders[attr] = kind(
                value=self._strength(attr),
                min=0,
                max=top,
                step=step,
                description=label,
                continuous_update=False,
                style={"description_width": "120px"},
                layout=widgets.Layout(width="300px", min_width="300px"),  # track stays draggable
            )
        return sliders

    def _strength(self, attr: str) -> float:
        value = getattr(self.augment, attr)
        if attr == "noise_snr_db":
            return NOISE_OFF_DB if value is None else min(float(value[0]), NOISE_OFF_DB)
        if value is None:
            return 0.0
        return float(max(np.abs(np.atleast_1d(value))))

    def _set_strength(self, attr: str, v: float) -> None:
        old = getattr(self.augment, attr)
        if attr == "gain_db":
            new: Any = (-v, v) if v else None
        elif attr == "noise_snr_db":
            new = None if v >= NOISE_OFF_DB else (v, v)
        elif attr in ("time_masks", "freq_masks"):
            new = int(v)
        elif isinstance(old, tuple):  # a (height, width) pair stays a pair
            new = (v, v)
        else:
            new = float(v)
        setattr(self.augment, attr, new)

    def _changed(self, change: dict) -> None:
        if change["owner"] is self.augment_toggle:
            self._enable_sliders()
        for attr, slider in self.sliders.items():
            if change["owner"] is slider:
                self._set_strength(attr, change["new"])
        self.render()

    # --- building and drawing the view ------------------------------------------------------
    def _batch(self, slot: int, augmented: bool) -> Any:
        engine = copy.copy(self.stream.engine)  # a private copy: the stream's cursor stays put
        engine.augment = self.augment if augmented else None
        engine.training = augmented
        engine.augment_enabled = True
        engine.stats = None  # keep a profiler attached to the stream out of the explorer's work
        return engine.build(self.stream.epoch, slot)

    def figure(self) -> Figure | None:
        """A new matplotlib figure of the current view (None when nothing is left to show)."""
        slot, label = self.batch_slider.value, self.class_picker.value
        augmented = bool(self.augment_toggle.value and self.augment is not None)
        batch = self._batch(slot, augmented)
        keep = np.arange(len(batch.y)) if label < 0 else np.flatnonzero(batch.y == label)
        self.last = {
            "batch": slot,
            "label": label,
            "augmented": augmented,
            "shown": 0 if batch.empty else len(keep),
            "paths": [batch.paths[i] for i in keep] if not batch.empty else [],
            "skipped": len(batch.skipped),
        }
        if batch.empty or not len(keep):
            return None
        self.last["x"] = batch.x[keep]
        return self._draw(batch.x[keep], batch.y[keep])

    def _draw(self, x: np.ndarray, y: np.ndarray) -> Figure:
        names, kind = self.stream.class_names, self.stream.kind
        if kind == "audio":
            opts = self.stream.options
            return show_audio(
                x,
                opts.get("sample_rate", 16000),
                labels=y,
                class_names=names,
                n=self.n,
                player=False,
                hop_length=opts.get("hop_length", 160),
            )
        if x.ndim == 4:
            return show_batch(x, y, names, n=self.n)
        return show_tokens(x, getattr(self.stream, "tokenizer", None), y, names, n=self.n)

    def render(self) -> None:
        """Rebuild the current batch and replace the output with its view."""
        fig = self.figure()
        last = self.last
        where = f"batch {last['batch'] + 1} of {len(self.stream)}, epoch {self.stream.epoch}"
        self.batch_label.value = f"{last['batch'] + 1} of {len(self.stream)}"
        drawn = min(last["shown"], self.n)
        count = (
            f"{last['shown']} sample(s)"
            if drawn == last["shown"]
            else f"{drawn} of {last['shown']} sample(s)"
        )
        picked = (
            "" if last["label"] < 0 else f" of class {self.stream.class_names[last['label']]!r}"
        )
        text = (
            f"{where}: {count}{picked} shown, {last['skipped']} file(s) "
            f"skipped, augmentation {'on' if last['augmented'] else 'off'}"
        )
        self.status.value = text
        if fig is None:
            outputs = [_text_output(text)]
        else:
            outputs = [_png(fig)]
            plt.close(fig)
            if self.stream.kind == "audio" and last["x"].ndim == 2:  # waveforms: players too
                rate = self.stream.options.get("sample_rate", 16000)
                outputs += [_audio_output(clip, rate) for clip in last["x"][: self.n]]
        self.output.outputs = tuple(outputs)
        self.renders += 1


def explore(stream: Any, *, augment: Any = None, n: int | None = None) -> Explorer:
    """An interactive view of ``stream``'s batches (an ``ipywidgets.VBox``).

    A slider steps through the batches of the current epoch, a dropdown filters by class, a
    toggle switches augmentation on and off, and strength sliders move the augmenter's
    settings (rotation, zoom, translation, shear, brightness, contrast for an
    ``ImageAugment``; gain, shift, noise and SpecAugment masks for an ``AudioAugment``).
    Images show as a labelled grid, audio as waveforms and log-mels, text as a token table.

    ``augment`` defaults to the stream's own augmenter (moving the sliders changes that
    object, so a training stream using it trains with the new strengths); a stream without
    one gets a default ``ImageAugment``/``AudioAugment`` with the toggle off. Text streams
    have no augmentation. ``n`` caps the samples drawn (16 images, 4 clips, 8 documents).
    """
    return Explorer(stream, augment, n=n)


def _default_augment(stream: Any) -> Any:
    if stream.kind == "image":
        return ImageAugment(rotation=0.03, translation=0.1, zoom=0.1)
    if stream.kind == "audio":
        return AudioAugment()
    return None


def _png(fig: Figure) -> dict:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": repr(fig)}
    return {"output_type": "display_data", "data": data, "metadata": {}}


def _text_output(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text + "\n"}


def _audio_output(clip: np.ndarray, rate: int) -> dict:
    from IPython.display import Audio

    player = Audio(np.clip(clip, -1.0, 1.0), rate=rate, normalize=False)
    return {
        "output_type": "display_data",
        "data": {"text/html": player._repr_html_(), "text/plain": "<audio player>"},
        "metadata": {},
    }
