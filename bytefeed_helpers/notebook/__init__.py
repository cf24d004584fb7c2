"""Support for the notebooks: static figures, HTML tables, the interactive explorer, learning
curves and confusion matrices, the kit's warnings shown as plain lines in a cell that reads broken
files on purpose, and the runner that executes notebooks and records what they prove.

Needs the ``notebooks`` extra (``pip install "bytefeed-helpers[notebooks]"``): matplotlib,
ipywidgets, papermill and nbformat. Training jobs never need this package.
"""

from .curves import collect_predictions, confusion_matrix, plot_confusion, plot_history
from .messages import print_kit_warnings
from .plots import (
    audio_players,
    compare_batches,
    show_audio,
    show_batch,
    show_tokens,
    show_waveforms,
)
from .runner import NotebookRun, format_runs, run_notebook, run_notebooks, save_results
from .tables import HTMLTable, html_table
from .widgets import Explorer, explore

__all__ = [
    "Explorer",
    "HTMLTable",
    "NotebookRun",
    "audio_players",
    "collect_predictions",
    "compare_batches",
    "confusion_matrix",
    "explore",
    "format_runs",
    "html_table",
    "plot_confusion",
    "plot_history",
    "print_kit_warnings",
    "run_notebook",
    "run_notebooks",
    "save_results",
    "show_audio",
    "show_batch",
    "show_tokens",
    "show_waveforms",
]
