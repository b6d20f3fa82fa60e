"""kerastrain.search.studies: variants, their checks, overlaid curves and the table of final metrics."""

import pandas as pd
import pytest

from kerastrain.search import studies
from kerastrain.config import MLPConfig, resolve
from kerastrain.errors import UsageError


def fake_result(name, val_accuracy, val_loss):
    history = pd.DataFrame(
        {"epoch": range(1, len(val_accuracy) + 1), "val_accuracy": val_accuracy, "val_loss": val_loss}
    )
    metrics = {
        "epochs": len(val_accuracy),
        "validation": {"best_accuracy": max(val_accuracy), "best_loss": min(val_loss)},
        "test": {"accuracy": val_accuracy[-1] - 0.01},
        "examples_per_second": 1000.0,
    }
    return studies.VariantResult(name, None, metrics, history, f"runs/{name}")


def test_folder_names_are_lowercase_words_joined_by_dashes():
    assert studies.folder_name("Adam + batch norm") == "adam-batch-norm"
    assert studies.folder_name("mixed_bfloat16") == "mixed-bfloat16"
    assert studies.folder_name("lr 0.01") == "lr-0.01"


def test_optimizer_variants_use_each_optimizers_learning_rate():
    variants = studies.optimizer_variants(["sgd", "adam"])
    assert variants == {
        "sgd": {"optimizer": "sgd", "learning_rate": studies.OPTIMIZER_LEARNING_RATES["sgd"]},
        "adam": {"optimizer": "adam", "learning_rate": studies.OPTIMIZER_LEARNING_RATES["adam"]},
    }
    assert list(studies.optimizer_variants()) == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]


def test_with_and_without_pairs_each_variant_with_its_changed_copy():
    paired = studies.with_and_without(studies.optimizer_variants(["sgd", "adam"]), "dropout", {"dropout": 0.2})
    assert list(paired) == ["sgd", "sgd + dropout", "adam", "adam + dropout"]
    assert paired["adam + dropout"] == {"optimizer": "adam", "learning_rate": 0.001, "dropout": 0.2}
    assert "dropout" not in paired["adam"]


@pytest.mark.parametrize(
    "variants, message",
    [
        ({"a": {"optimiser": "sgd"}}, "'optimiser', which is not a field of MLPConfig"),
        ({"a": {"dropout": 1.5}}, "--dropout <= 0.95"),
        ({"Adam": {}, "adam": {"epochs": 2}}, "would share the run folder 'adam'"),
    ],
)
def test_bad_variants_are_refused_before_anything_trains(tmp_path, variants, message):
    trained = []
    base = resolve(MLPConfig, overrides={"epochs": 1})
    with pytest.raises(UsageError, match=message.replace("+", r"\+")):
        studies.run_variants(trained.append, base, variants, tmp_path)
    assert trained == []
    assert list(tmp_path.iterdir()) == []


def test_plot_comparisons_draws_one_row_per_comparison_and_one_line_per_variant():
    first = {"sgd": fake_result("sgd", [0.5, 0.7, 0.8], [1.2, 0.9, 0.7]), "adam": fake_result("adam", [0.8, 0.9, 0.95], [0.6, 0.3, 0.2])}
    second = {"adam": first["adam"]}
    figure = studies.plot_comparisons({"Optimizers": first, "Adam": second})
    axes = figure.axes
    assert len(axes) == 4
    assert [len(axis.lines) for axis in axes] == [2, 2, 1, 1]
    assert axes[0].get_title() == "Optimizers: validation loss"
    assert [line.get_label() for line in axes[1].lines] == ["sgd", "adam"]
    assert list(axes[1].lines[1].get_ydata()) == [0.8, 0.9, 0.95]
    assert list(axes[1].lines[1].get_xdata()) == [1, 2, 3]


def test_final_metrics_table_takes_the_last_epoch_and_the_runs_metrics():
    table = studies.final_metrics_table(
        {"sgd": fake_result("sgd", [0.5, 0.9, 0.8], [1.2, 0.9, 1.0])}
    )
    row = table.loc["sgd"]
    assert row["final_val_accuracy"] == 0.8
    assert row["best_val_accuracy"] == 0.9
    assert row["final_val_loss"] == 1.0
    assert row["test_accuracy"] == pytest.approx(0.79)
    assert row["epochs"] == 3
