"""Tests for the MLP recipe's scaling of pixel columns and for decaying over the planned steps."""

import numpy as np
import pytest

from kerastrain import optimizers
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.data.examples import Examples
from kerastrain.recipes import mlp


def examples_of(features):
    labels = np.array(["a", "b"] * (len(features) // 2), dtype=object)
    return Examples(features, labels, "table", [f"column{index}" for index in range(features.shape[1])])


@pytest.mark.parametrize(
    "scaling, columns, one_scale",
    [("auto", 64, True), ("auto", 13, False), ("per_feature", 64, False), ("global", 13, True)],
)
def test_scaling_of_image_shaped_and_other_columns(scaling, columns, one_scale):
    features = np.random.default_rng(0).integers(0, 17, size=(40, columns)).astype("float32")
    examples = examples_of(features)
    scaler = mlp.fit_preprocessor(MLPConfig(scaling=scaling), examples)
    standard = scaler.scaler_
    assert (np.ptp(standard.scale_) == 0 and np.ptp(standard.mean_) == 0) == one_scale
    assert scaler.feature_names == examples.feature_names
    transformed = scaler.model_inputs(features)
    assert transformed.shape == features.shape and transformed.dtype == np.float32


def test_the_mlp_defaults_decay_over_the_planned_steps_and_the_textcnn_keeps_its_own():
    assert MLPConfig().decay_steps == 0 and MLPConfig().schedule == "cosine"
    assert TextCNNConfig().schedule == "constant"


def test_planned_decay_steps():
    assert optimizers.planned_decay_steps(500, epochs=3, steps_per_epoch=7) == 500
    assert optimizers.planned_decay_steps(0, epochs=3, steps_per_epoch=7) == 21
    with pytest.raises(ValueError):
        optimizers.planned_decay_steps(0, epochs=3, steps_per_epoch=None)


def test_cosine_decays_over_the_planned_steps():
    config = MLPConfig(schedule="cosine", decay_steps=0, epochs=3, learning_rate=0.1)
    optimizer = optimizers.optimizer_from_config(config, steps_per_epoch=5)
    schedule = optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay" and schedule["config"]["decay_steps"] == 15


def test_report_plots_the_planned_decay_of_a_run_stopped_early():
    from kerastrain.report import page

    config = {"schedule": "cosine", "learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5, "epochs": 4}
    section = page.learning_rate_section(config, {"steps_per_epoch": 5}, epochs=2)
    assert "10 training steps" in section and "the last step" in section
    rates = page.learning_rates({**config, "decay_steps": 20}, 10)
    assert rates[-1] > 0.04  # halfway down the planned 20 steps, not at 0
