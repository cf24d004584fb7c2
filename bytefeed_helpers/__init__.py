"""bytefeed_helpers: feed folders of byte files (images, audio, text) to Keras lazily and fast.

The names below are what a training script needs. They are imported on first use (PEP 562),
so ``import bytefeed_helpers`` and the manifest CLI start in milliseconds; TensorFlow and
Keras load only when a stream or a callback is first touched. Decoders live in
``bytefeed_helpers.decoders``; notebook support (plots, explorer, runner) in
``bytefeed_helpers.notebook``; profiling and benchmarks in ``bytefeed_helpers.bench``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Manifest": "manifest",
    "ManifestError": "manifest",
    "build_manifest": "folders",
    "read_manifest": "manifest",
    "BadFileError": "errors",
    "SkippedFile": "errors",
    "BytefeedWarning": "errors",
    "Stream": "stream",
    "image_batches": "images",
    "audio_batches": "audio",
    "text_batches": "text",
    "from_directory": "directory",
    "WordTokenizer": "decoders.text",
    "ImageAugment": "augment",
    "AudioAugment": "augment",
    "keras2_augment": "augment",
    "StreamMonitor": "training",
    "StreamCheckpoint": "checkpoint",
    "pack": "packed",
    "to_tf_dataset": "tf_pipeline",
}

__all__ = [
    "AudioAugment",
    "BadFileError",
    "BytefeedWarning",
    "ImageAugment",
    "Manifest",
    "ManifestError",
    "SkippedFile",
    "Stream",
    "StreamCheckpoint",
    "StreamMonitor",
    "WordTokenizer",
    "audio_batches",
    "build_manifest",
    "from_directory",
    "image_batches",
    "keras2_augment",
    "pack",
    "read_manifest",
    "text_batches",
    "to_tf_dataset",
]

if TYPE_CHECKING:
    from .audio import audio_batches
    from .augment import AudioAugment, ImageAugment, keras2_augment
    from .checkpoint import StreamCheckpoint
    from .decoders.text import WordTokenizer
    from .directory import from_directory
    from .errors import BadFileError, BytefeedWarning, SkippedFile
    from .folders import build_manifest
    from .images import image_batches
    from .manifest import Manifest, ManifestError, read_manifest
    from .packed import pack
    from .stream import Stream
    from .text import text_batches
    from .tf_pipeline import to_tf_dataset
    from .training import StreamMonitor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bytefeed_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
