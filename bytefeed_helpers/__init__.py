"""bytefeed_helpers: feed folders of byte files (images, audio, text) to Keras lazily and fast.

The public names below are imported on first use (PEP 562), so ``import bytefeed_helpers``
and the manifest CLI start in milliseconds; TensorFlow and Keras load only when a stream,
a Keras adapter or a baseline is first touched.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # manifests
    "Manifest": "manifest",
    "ManifestError": "manifest",
    "ValidationReport": "manifest",
    "build_manifest": "manifest",
    "read_manifest": "manifest",
    # errors and skip records
    "BadFileError": "errors",
    "SkippedFile": "errors",
    "write_error_report": "errors",
    # decoders
    "decode_image": "decode_image",
    "decode_audio": "decode_audio",
    "logmel": "decode_audio",
    "decode_text": "decode_text",
    "WordTokenizer": "decode_text",
    "pad_sequences": "decode_text",
    # the engine and its three front-ends
    "Stream": "stream",
    "image_batches": "image_batches",
    "audio_batches": "audio_batches",
    "text_batches": "text_batches",
    # the article's generators, the baseline the kit is measured against
    "article_image_generator": "article_generators",
    "article_audio_generator": "article_generators",
    "article_text_generator": "article_generators",
    # augmentation, static plots and the interactive explorer
    "ImageAugment": "augment",
    "AudioAugment": "augment",
    "keras2_augment": "augment",
    "show_batch": "plots",
    "show_audio": "plots",
    "show_tokens": "plots",
    "show_waveforms": "plots",
    "compare_batches": "plots",
    "explore": "widgets",
    # training on streams: callback, learning curves, confusion matrix, predictions, step times
    "StreamMonitor": "training",
    "plot_history": "training",
    "plot_confusion": "training",
    "confusion_matrix": "training",
    "decode_files": "training",
    "predict_files": "training",
    "collect_predictions": "training",
    "step_time_ratio": "training",
    # scaling out: packed shards, resumable streams, the tf.data service
    "pack": "packed",
    "read_packed": "packed",
    "verify_pack": "packed",
    "PackedSource": "packed",
    "PackIndex": "packed",
    "StreamCheckpoint": "checkpoint",
    "load_state": "checkpoint",
    "save_state": "checkpoint",
    "to_tf_dataset": "tf_pipeline",
    # measuring memory and speed, and the decoded-sample cache
    "profile_stream": "profiling",
    "StreamProfile": "profiling",
    "profile_pipelines": "benchmark",
    "compare": "benchmark",
    "memory_vs_size": "benchmark",
    "Comparison": "benchmark",
    "SampleCache": "cache",
    "clear_cache": "cache",
    # running notebooks and recording what they prove
    "run_notebook": "notebook_runner",
    "run_notebooks": "notebook_runner",
    "save_results": "notebook_runner",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

# These modules are named like the function they hold. Importing a submodule binds its name on
# the package, which would shadow the lazy function with the module; importing them here binds
# the functions for good. None of them imports TensorFlow.
from .audio_batches import audio_batches  # noqa: E402, F401
from .decode_audio import decode_audio  # noqa: E402, F401
from .decode_image import decode_image  # noqa: E402, F401
from .decode_text import decode_text  # noqa: E402, F401
from .image_batches import image_batches  # noqa: E402, F401
from .text_batches import text_batches  # noqa: E402, F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bytefeed_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
