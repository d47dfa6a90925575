"""`training/averaging.py`: which variables are averaged, the mean of the kept checkpoint files (a NumPy oracle over
the files), which checkpoints are kept and pruned, and the choice of the final model. Whole `fit` runs with
--average-checkpoints are in tests/test_fit.py."""

import json
import os

import keras
import numpy as np
import pytest

from audiocaps_tf.training import averaging
from audiocaps_tf.training import run_dir as run_dir_lib
from audiocaps_tf.training.config import FitError
from audiocaps_tf.training.trainer import save_model


@keras.saving.register_keras_serializable(package="audiocaps_tf_tests")
class Counters(keras.layers.Layer):
    """Non-trainable state that is not a moving statistic: a float offset and an integer counter."""

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=False, name="offset")
        self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="count")

    def call(self, x):
        return x + self.offset


def _model():
    frozen = keras.layers.Dense(3, name="frozen")
    frozen.trainable = False
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), frozen,
                              keras.layers.BatchNormalization(name="norm"), Counters(name="counters")])
    return model


def _randomise(model, seed):
    """Every variable set to random values (integers too), so that nothing equals by chance."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if keras.backend.is_float_dtype(variable.dtype):
            variable.assign(rng.standard_normal(shape).astype(variable.dtype) + (2.0 if "variance" in variable.path
                                                                                   else 0.0))
        else:
            variable.assign(np.asarray(rng.integers(1, 100, shape), variable.dtype))


def _values(model):
    return [keras.ops.convert_to_numpy(variable) for variable in model.weights]


def test_the_averaged_variables_are_the_trainable_floats_and_the_moving_statistics():
    model = _model()
    names = [variable.path.split("/", 1)[1] for variable in model.weights]
    averaged = [names[i] for i in averaging.averaged_indices(model)]
    assert sorted(averaged) == ["dense/bias", "dense/kernel", "norm/beta", "norm/gamma", "norm/moving_mean",
                                "norm/moving_variance"]
    assert {"frozen/kernel", "frozen/bias", "counters/offset", "counters/count"} == set(names) - set(averaged)


def test_averaging_sets_the_mean_of_the_checkpoint_files_and_keeps_the_rest(tmp_path):
    model = _model()
    paths = []
    for seed in range(3):
        _randomise(model, seed)
        paths.append(tmp_path / f"period-{seed + 1:04d}.npz")
        averaging.save_checkpoint(model, paths[-1])
    _randomise(model, 7)  # "the best model": what averaging starts from
    best = _values(model)
    averaging.average_checkpoints(model, paths)
    after = _values(model)

    indices = averaging.averaged_indices(model)
    for i, (before, value) in enumerate(zip(best, after)):
        if i in indices:
            saved = [np.load(path)[str(i)] for path in paths]
            oracle = (saved[0].astype(np.float64) + saved[1] + saved[2]) / 3
            assert value.dtype == np.float32
            np.testing.assert_allclose(value, oracle, rtol=1e-6, atol=1e-7)
            assert not np.allclose(value, before)
        else:
            np.testing.assert_array_equal(value, before)  # frozen, non-trainable and integer state: the best's
    with np.load(paths[0]) as saved:
        assert sorted(saved.files, key=int) == [str(i) for i in indices]  # nothing else is written


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    averaging.save_checkpoint(other, tmp_path / "period-0001.npz")
    model = _model()
    before = _values(model)
    with pytest.raises(FitError, match="does not hold the averaged weights"):
        averaging.average_checkpoints(model, [tmp_path / "period-0001.npz"])
    assert all(np.array_equal(a, b) for a, b in zip(before, _values(model)))


def _history(scores):
    return [{"period": i + 1, "epoch": i + 1, "val": {"CIDEr": score}} for i, score in enumerate(scores)]


def test_the_kept_periods_are_the_best_or_the_last():
    history = _history([10.0, 30.0, None, 20.0, 30.0, 5.0])
    assert averaging.kept_periods(history, 2, "best") == [2, 5]  # ties: both
    assert averaging.kept_periods(history, 3, "best") == [2, 4, 5]
    assert averaging.kept_periods(_history([30.0, 30.0, 30.0]), 2, "best") == [1, 2]  # ties: the earlier
    assert averaging.kept_periods(history, 3, "last") == [4, 5, 6]
    assert averaging.kept_periods(history, 9, "best") == [1, 2, 4, 5, 6]  # never an unscored one
    assert averaging.kept_periods(history, 9, "last") == [1, 2, 3, 4, 5, 6]
    assert averaging.kept_periods([], 2, "best") == []


def test_pruning_removes_only_checkpoints_that_are_not_kept(tmp_path):
    directory = tmp_path / run_dir_lib.CHECKPOINTS_DIR
    directory.mkdir()
    names = ["period-0001.npz", "period-0002.npz", "period-0003.npz", "period-0004.npz.partial", "notes.txt",
             "period-0001.npz.bak", "my-period-0001.npz"]
    for name in names:
        (directory / name).write_text(name)
    averaging.prune_checkpoints(tmp_path, [2, 3])
    assert sorted(p.name for p in directory.iterdir()) == sorted(set(names) - {"period-0001.npz",
                                                                              "period-0004.npz.partial"})


class _Validation:
    """Scripted validation: the CIDEr of the averaged model; records the weights it was given."""

    def __init__(self, cider):
        self.cider = cider
        self.weights = None

    def __call__(self, model):
        self.weights = _values(model)
        return {"CIDEr": self.cider, "BLEU_4": 1.0}, []


def _run_with_checkpoints(run_dir, scores):
    """A run directory as training leaves it: one checkpoint per period, best.keras of the best period."""
    model = _model()
    history = _history(scores)
    for entry in history:
        _randomise(model, entry["period"])
        averaging.save_checkpoint(model, averaging.checkpoint_path(run_dir, entry["period"]))
    best = max(history, key=lambda entry: entry["val"]["CIDEr"])
    _randomise(model, best["period"])
    save_model(model, run_dir / run_dir_lib.BEST_MODEL_FILE)
    state = {"status": "testing", "history": history, "best": best, "stopped_early": False}
    run_dir_lib.write_state(run_dir, state)
    return state, _values(model)


def _loaded(path):
    return _values(keras.models.load_model(path))


@pytest.mark.parametrize("cider, used", [(40.0, "averaged"), (30.0, "averaged"), (29.0, "best")])
def test_the_average_is_the_final_model_when_it_validates_at_least_as_well(tmp_path, cider, used, capsys):
    state, best = _run_with_checkpoints(tmp_path, [10.0, 30.0, 20.0, 25.0])
    validation = _Validation(cider)
    record = averaging.choose_final_model(tmp_path, state, 3, "best", validation, save_model)
    assert record["used"] == used and record["periods"] == [2, 3, 4] and record["best_period"] == 2
    assert record["val_averaged"]["CIDEr"] == cider and record["val_best"]["CIDEr"] == 30.0
    assert json.loads((tmp_path / "state.json").read_text())["averaging"] == record
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"period-000{i}.npz" for i in (2, 3, 4)]
    averaged = validation.weights  # what was validated is what was saved
    if used == "averaged":
        assert all(np.array_equal(a, b) for a, b in zip(_loaded(tmp_path / "best.keras"), averaged))
        assert all(np.array_equal(a, b) for a, b in zip(_loaded(tmp_path / "best_checkpoint.keras"), best))
        assert not (tmp_path / "averaged.keras").exists()
        assert "testing the averaged model" in capsys.readouterr().out
    else:
        assert all(np.array_equal(a, b) for a, b in zip(_loaded(tmp_path / "best.keras"), best))
        assert all(np.array_equal(a, b) for a, b in zip(_loaded(tmp_path / "averaged.keras"), averaged))
        assert not (tmp_path / "best_checkpoint.keras").exists()
        assert "testing the best checkpoint" in capsys.readouterr().out
    # A run killed after this step and resumed: the record is reused, nothing is validated or moved again.
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "state.json"}
    not_again = _Validation(0.0)
    assert averaging.choose_final_model(tmp_path, state, 3, "best", not_again, save_model) == record
    assert not_again.weights is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "state.json"} == files


def test_one_kept_checkpoint_is_not_averaged(tmp_path):
    state, _ = _run_with_checkpoints(tmp_path, [10.0])
    record = averaging.choose_final_model(tmp_path, state, 2, "best", _Validation(99.0), save_model)
    assert record["used"] == "best" and record["val_averaged"] is None and record["periods"] == [1]
    assert not (tmp_path / "averaged.keras").exists()


def test_an_interrupted_move_of_the_average_completes_and_a_foreign_file_is_not_replaced(tmp_path):
    averaged, best, single = (tmp_path / name for name in ("averaged.keras", "best.keras", "best_checkpoint.keras"))
    averaged.write_text("average")
    best.write_text("best")
    os.link(best, single)  # killed between the link and the unlink of the move
    averaging._promote_averaged(tmp_path)
    assert (best.read_text(), single.read_text(), averaged.exists()) == ("average", "best", False)
    averaging._promote_averaged(tmp_path)  # done: nothing changes
    assert (best.read_text(), single.read_text()) == ("average", "best")

    averaged.write_text("average")
    best.write_text("best")
    single.unlink()
    single.write_text("someone's")
    with pytest.raises(FitError, match="best_checkpoint.keras exists"):
        averaging._promote_averaged(tmp_path)
    assert (averaged.read_text(), best.read_text(), single.read_text()) == ("average", "best", "someone's")
