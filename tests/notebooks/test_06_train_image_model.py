"""Notebook 06 trains the image model on data_sample/ in a few epochs, saves and reloads it."""

from __future__ import annotations

import pytest
from support import check_training_run

pytestmark = pytest.mark.notebook

PARAMETERS = {"EPOCHS": 8, "TIMING_STEPS": 5}
FLOOR = 0.65  # validation accuracy; chance 1/3 (see check_training_run for the margin)


def test_06_train_image_model(run_nb, tmp_path):
    r = run_nb("06_train_image_model", **PARAMETERS).results
    # everything the notebook saves goes beside its results
    check_training_run(r, PARAMETERS, FLOOR, models=tmp_path / "06_train_image_model")
