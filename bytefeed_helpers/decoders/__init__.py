"""The decoders: one file's bytes to one sample, by content, with a readable error when bad.

``decode_image`` (JPEG/PNG/GIF/WebP/BMP/TIFF -> ``uint8 [H, W, C]``), ``decode_audio``
(WAV/FLAC/OGG/MP3 -> ``float32 [N]`` mono at a chosen rate), ``decode_text`` (bytes -> ``str``)
with ``WordTokenizer`` and ``pad_sequences``; ``logmel`` turns waveforms into log-mel
spectrograms. Each raises ``BadFileError`` for a bad file. The modules with a leading
underscore are private helpers (whole-file reads, resampler reuse, scratch buffers).
"""

from .audio import AUDIO_FORMATS, audio_info, decode_audio, logmel
from .image import IMAGE_FORMATS, decode_image, image_info
from .text import WordTokenizer, decode_text, pad_sequences, text_info

__all__ = [
    "AUDIO_FORMATS",
    "IMAGE_FORMATS",
    "WordTokenizer",
    "audio_info",
    "decode_audio",
    "decode_image",
    "decode_text",
    "image_info",
    "logmel",
    "pad_sequences",
    "text_info",
]
