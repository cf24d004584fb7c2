"""Notebook 08 trains the text model on data_sample/ in a few epochs, saves and reloads it."""

from __future__ import annotations

import pytest
from support import check_training_run

pytestmark = pytest.mark.notebook

PARAMETERS = {"EPOCHS": 10, "TIMING_STEPS": 5}
FLOOR = 0.75  # validation accuracy; chance 1/2 (see check_training_run for the margin)


def test_08_train_text_model(run_nb, tmp_path):
    r = run_nb("08_train_text_model", **PARAMETERS).results
    # everything the notebook saves goes beside its results
    check_training_run(r, PARAMETERS, FLOOR, models=tmp_path / "08_train_text_model")
    # the Keras route on the same stream: raw text, a TextVectorization inside the model
    # (12/12 with SEED 0, as the token route)
    assert r["vectorize_inside_val_accuracy"] >= FLOOR
