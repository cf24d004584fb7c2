"""Measuring the streams: profiles (throughput, stages, memory), side-by-side comparisons
with the usual loaders and with the article's generators, benchmark data sets, and speed
checks. What ``python -m bytefeed_helpers bench`` and notebook 05 run; training jobs never
need this package.
"""

from .article import article_audio_generator, article_image_generator, article_text_generator
from .comparison import (
    Comparison,
    PipelineResult,
    compare,
    decode_bound,
    machine_info,
    memory_vs_size,
    plot_memory_vs_size,
    plot_timelines,
    profile_pipelines,
    repeat_manifest,
    sweep_rows,
)
from .profiling import MemorySampler, StageStats, StreamProfile, profile_stream, round_sig, rss
from .scale import ScaleReport, scale_benchmark
from .speed import read_speed, step_time_ratio

__all__ = [
    "Comparison",
    "MemorySampler",
    "PipelineResult",
    "ScaleReport",
    "StageStats",
    "StreamProfile",
    "article_audio_generator",
    "article_image_generator",
    "article_text_generator",
    "compare",
    "decode_bound",
    "machine_info",
    "memory_vs_size",
    "plot_memory_vs_size",
    "plot_timelines",
    "profile_pipelines",
    "profile_stream",
    "read_speed",
    "repeat_manifest",
    "round_sig",
    "rss",
    "scale_benchmark",
    "step_time_ratio",
    "sweep_rows",
]
