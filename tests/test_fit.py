"""`python -m audiocaps_tf.fit`: outputs, run directories, resuming, MirroredStrategy, 1NN, and its pieces.

Every run trains on a tiny demo dataset (40 clips: 32 train, 4 val, 4 test) with a tiny model for 1-2 epochs.
"""

import csv
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audiocaps_tf import fit, metrics
from audiocaps_tf.data import demo
from audiocaps_tf.data.layout import read_split, split_path
from audiocaps_tf.data.pipeline import TFRecordSource, evaluation_dataset
from audiocaps_tf.layers.mfcc_frontend import num_mfcc_frames
from audiocaps_tf.tokens.vocabulary import load_vocabulary
from audiocaps_tf.training import averaging, evaluation, trainer
from audiocaps_tf.training import run_dir as run_dir_lib
from audiocaps_tf.training.callbacks import ValidationCallback
from audiocaps_tf.training.config import RUN_ARGUMENTS, FitConfig
from audiocaps_tf.training.losses import MaskedSmoothedCrossEntropy

CLIPS = 40
TINY_MODEL = {"units": 8, "embedding_dim": 8}
TINY = ["--demo-clips", str(CLIPS), "--batch-size", "8", "--workers", "1",
        "--model-overrides", json.dumps(TINY_MODEL)]
EVALUATION_KEYS = set(metrics.METRICS) | {"num_clips"}
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private demo cache ($AUDIOCAPS_TF_CACHE) shared by the runs of this module."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIOCAPS_TF_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def run(cache, tmp_path_factory):
    """The run directory of `fit --epochs 1` on the tiny demo (default model, default dropout)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert fit.main([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def _demo_split(cache, split):
    return read_split(split_path(cache / f"demo-{CLIPS}-0", split))


def _events(directory):
    """{plugin name: set of tags} of the TensorBoard event files under `directory`."""
    found = {}
    for path in pathlib.Path(directory).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name or "scalars"
                found.setdefault(plugin, set()).add(value.tag)
    return found


# ---------------------------------------------------------------------------------------------------------------
# A whole run


def test_a_run_writes_config_tokenizer_and_a_loadable_best_model(run, cache):
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == fit.DEFAULT_MODEL
    assert config["data"] == {"kind": "demo", "clips": CLIPS, "seed": 0}
    assert config["epochs"] == 1 and config["batch_size"] == 8 and config["model_overrides"] == TINY_MODEL
    assert config["learning_rate"] == 1e-3 and config["clip_norm"] == 0.4 and config["label_smoothing"] == 0.02

    vocabulary = load_vocabulary(run / "tokenizer")
    prepared = load_vocabulary(cache / f"demo-{CLIPS}-0-mfcc" / "tokenizer")
    assert vocabulary.id_to_token == prepared.id_to_token

    model = keras.models.load_model(run / "best.keras")
    assert model.model_name == fit.DEFAULT_MODEL and model.units == 8
    assert not model.compiled  # an inference model: nothing but audiocaps_tf needed to load it
    caption = model.generate(np.zeros([1, 16000], np.float32))[0]
    assert isinstance(caption, str)


def test_a_run_scores_val_and_test_and_writes_the_test_predictions(run, cache):
    scores = json.loads((run / "metrics.json").read_text())
    assert set(scores) == {"val", "test"}
    for split in ("val", "test"):
        assert set(scores[split]) == EVALUATION_KEYS
        assert scores[split]["num_clips"] == len(_demo_split(cache, split))
        assert all(0 <= scores[split][m] <= 1000 for m in ("BLEU_1", "METEOR", "ROUGE_L", "CIDEr"))
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "complete" and scores["val"] == state["best"]["val"]

    with open(run / "test_predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["youtube_id", "start_time", "caption"]
    expected = [(clip.youtube_id, str(clip.start_time)) for clip in _demo_split(cache, "test")]
    assert [(row[0], row[1]) for row in rows[1:]] == expected
    assert all(len(row) == 3 for row in rows[1:])


def test_a_run_logs_losses_scores_captions_and_attention_maps_for_tensorboard(run):
    assert fit.has_tensorboard(), "the tensorboard package must be installed (tf.summary writes through it)"
    logs = run / "logs"
    train, validation = _events(logs / "train"), _events(logs / "validation")
    assert "epoch_loss" in train["scalars"]
    assert {"epoch_CIDEr", "epoch_BLEU_4", "epoch_METEOR"} <= validation["scalars"]
    assert "captions" in validation["text"]
    # one attention map per sample clip (4 val clips) and memory (tempatt-mfcc-lstm: one)
    assert {f"attention/memory0/clip{k}" for k in range(4)} <= validation["images"]
    assert "test_CIDEr" in _events(logs / "test")["scalars"]


# ---------------------------------------------------------------------------------------------------------------
# Run directories


def test_a_directory_that_is_not_a_run_is_refused_and_left_alone(cache, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert fit.main([*TINY, "--epochs", "1", "--out", str(out)]) == 1
    assert "error:" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_finished_run_is_never_overwritten(run, capsys):
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert fit.main([*TINY, "--epochs", "1", "--out", str(run)]) == 1
    assert "finished run" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_an_unfinished_run_with_other_options_is_refused(tmp_path):
    options = {"model": "tempatt-mfcc-lstm", "epochs": 2, "strategy": "auto", "beam_size": 1}
    run_dir_lib.open_run_dir(tmp_path / "r", options)
    with pytest.raises(run_dir_lib.RunDirError, match="epochs: 2 in the run, 3 now"):
        run_dir_lib.open_run_dir(tmp_path / "r", {**options, "epochs": 3})
    # where it runs and how the test split is decoded may change
    merged, resumed = run_dir_lib.open_run_dir(tmp_path / "r", {**options, "strategy": "mirrored", "beam_size": 3})
    assert resumed and merged["strategy"] == "mirrored" and merged["beam_size"] == 3
    # --resume compares only the options given again
    merged, resumed = run_dir_lib.open_run_dir(tmp_path / "r", {**options, "epochs": 9}, resume=True, given=())
    assert resumed and merged["epochs"] == 2
    with pytest.raises(run_dir_lib.RunDirError, match="no run to resume"):
        run_dir_lib.open_run_dir(tmp_path / "new", options, resume=True)


class Killed(Exception):
    pass


class KillAfterFirstEpoch(keras.callbacks.Callback):
    """Runs after BackupAndRestore (extra callbacks come last): the first epoch is backed up, then the run dies."""

    def on_epoch_end(self, epoch, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]
        raise Killed()


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_train_begin(self, logs=None):  # after BackupAndRestore restored the backup
        self.weights = [np.array(w) for w in self.model.get_weights()]

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_a_killed_run_resumes_from_its_last_epoch(cache, tmp_path):
    out = tmp_path / "run"
    argv = [*TINY, "--epochs", "2", "--out", str(out)]
    kill = KillAfterFirstEpoch()
    with pytest.raises(Killed):
        fit.main(argv, callbacks=[kill])
    first = json.loads((out / "state.json").read_text())
    assert [entry["period"] for entry in first["history"]] == [1]
    assert first["best"]["period"] == 1 and (out / "best.keras").is_file()
    assert (out / "backup").is_dir() and not (out / "metrics.json").exists()

    recorder = Recorder()
    assert fit.main(argv, callbacks=[recorder]) == 0  # the same command resumes
    assert recorder.epochs == [1]  # only the second epoch is trained again
    assert all(np.array_equal(a, b) for a, b in zip(kill.weights, recorder.weights))
    state = json.loads((out / "state.json").read_text())
    assert [entry["period"] for entry in state["history"]] == [1, 2]
    assert state["history"][0] == first["history"][0]  # the first epoch's record is kept as it was
    best_cider = max(entry["val"]["CIDEr"] for entry in state["history"])
    assert state["best"]["val"]["CIDEr"] == best_cider
    assert json.loads((out / "metrics.json").read_text())["val"] == state["best"]["val"]
    assert not (out / "backup").exists()  # removed once training finished


def test_resume_continues_a_run_with_its_own_options(cache, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(Killed):
        fit.main([*TINY, "--epochs", "2", "--out", str(out)], callbacks=[KillAfterFirstEpoch()])
    assert fit.main(["--resume", "--epochs", "3", "--out", str(out)]) == 1  # an option that differs
    assert "epochs: 2 in the run, 3 now" in capsys.readouterr().err
    recorder = Recorder()
    assert fit.main(["--resume", "--out", str(out)], callbacks=[recorder]) == 0
    assert recorder.epochs == [1]
    assert json.loads((out / "state.json").read_text())["status"] == "complete"


# ---------------------------------------------------------------------------------------------------------------
# MirroredStrategy

# For the training scripts run in subprocesses: records each batch's loss and prints "STEP n" after it.
LOSSES_CALLBACK = textwrap.dedent("""
    import keras

    class Losses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []
        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))
            print("STEP", len(self.losses), flush=True)
""")

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from audiocaps_tf import fit
""") + LOSSES_CALLBACK + textwrap.dedent("""
    strategy, batch_size, out, overrides = sys.argv[1:5]
    losses = Losses()
    status = fit.main(["--demo-clips", "40", "--workers", "1", "--epochs", "1", "--model-overrides", overrides,
                       "--batch-size", batch_size, "--strategy", strategy, "--out", out], callbacks=[losses])
    state = json.load(open(out + "/state.json"))
    print("RESULT", json.dumps({"status": status, "batch_losses": losses.losses, "replicas": state["replicas"],
                                "global_batch": state["global_batch"],
                                "epoch_losses": [e["loss"] for e in state["history"]]}))
""")


def _train_in_subprocess(strategy, batch_size, out, cache):
    """A fresh process (the logical CPU devices must be configured before TensorFlow starts) with 2 CPUs."""
    overrides = json.dumps({**TINY_MODEL, "dropout": 0.0})  # dropout masks would differ between the runs
    env = dict(os.environ, AUDIOCAPS_TF_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, strategy, str(batch_size), str(out), overrides],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_mirrored_strategy_on_two_cpus_matches_one_device(cache, tmp_path):
    """Two replicas with batch 4 each vs one device with batch 8, on the same data from the same weights.

    Tolerance: the first batch (no update yet) agrees to 1e-5 relative; every later batch loss and the epoch
    losses to 1e-3 relative. Adam's first steps move each weight by about lr * sign(gradient), so gradients
    that differ only by float rounding (the replicas sum their halves in another order) make losses drift
    apart by ~1e-4 over a few steps, not more (measured: at most 3e-4 relative).
    """
    mirrored = _train_in_subprocess("mirrored", 4, tmp_path / "mirrored", cache)
    single = _train_in_subprocess("one-device", 8, tmp_path / "single", cache)
    assert mirrored["status"] == single["status"] == 0
    assert (mirrored["replicas"], mirrored["global_batch"]) == (2, 8)
    assert (single["replicas"], single["global_batch"]) == (1, 8)
    assert len(mirrored["batch_losses"]) == len(single["batch_losses"]) == 4  # 32 training captions, batch 8
    np.testing.assert_allclose(mirrored["batch_losses"][0], single["batch_losses"][0], rtol=1e-5)
    np.testing.assert_allclose(mirrored["batch_losses"], single["batch_losses"], rtol=1e-3)
    np.testing.assert_allclose(mirrored["epoch_losses"], single["epoch_losses"], rtol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# 1NN


def test_a_1nn_run_indexes_the_train_clips_and_scores_their_captions(cache, tmp_path):
    out = tmp_path / "1nn"
    assert fit.main(["--model", "1nn-mfcc", "--demo-clips", str(CLIPS), "--workers", "1", "--out", str(out)]) == 0
    scores = json.loads((out / "metrics.json").read_text())
    assert set(scores) == {"val", "test"} and set(scores["test"]) == EVALUATION_KEYS
    train_captions = {clip.captions[0] for clip in _demo_split(cache, "train")}
    with open(out / "test_predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(_demo_split(cache, "test"))
    assert all(row["caption"] in train_captions for row in rows)
    model = keras.models.load_model(out / "best.keras")
    assert model.caption_index.size == len(_demo_split(cache, "train"))
    # a training clip's own audio retrieves its own caption
    clip = _demo_split(cache, "train")[0]
    waveform = demo.render(demo.clip_specs(CLIPS, 0)[int(clip.youtube_id[4:])])
    assert model.generate(waveform[None, :])[0] == clip.captions[0]


DATA_DIR_SECONDS = (3.0, 5.5, 8.0, 10.0, 12.5, 17.0, 21.0, 30.0)


@pytest.fixture(scope="module")
def audiocaps_dir(tmp_path_factory):
    """A small AudioCaps-layout directory that is not the demo's: 44.1 kHz stereo FLAC files named Y<id>.flac in
    a sub-folder, other clip ids, no labels column (attributes come from caption keywords), clips of 3 to 30 s
    (`DATA_DIR_SECONDS`: a demo clip repeated or cut)."""
    root = tmp_path_factory.mktemp("audiocaps")
    (root / "audio" / "part1").mkdir(parents=True)
    for split, count in (("train", 24), ("val", 4), ("test", 4)):
        rows = []
        offset = {"train": 0, "val": 24, "test": 28}[split]
        for index in range(offset, offset + count):
            spec = demo.clip_spec(index, seed=9, split=split)
            youtube_id = f"clip{index:03d}xyz"
            waveform = np.resize(demo.render(spec), round(DATA_DIR_SECONDS[index % len(DATA_DIR_SECONDS)] * 16000))
            resampled = np.interp(np.arange(0, len(waveform), 16000 / 44100), np.arange(len(waveform)), waveform)
            soundfile.write(root / "audio" / "part1" / f"Y{youtube_id}.flac",
                            np.stack([resampled, resampled], axis=1), 44100, subtype="PCM_16")
            for j, caption in enumerate(demo.describe(spec, 1 if split == "train" else 3)):
                rows.append([1000 + 10 * index + j, youtube_id, 30, caption])
        with open(root / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([["audiocap_id", "youtube_id", "start_time", "caption"], *rows])
    return root


def test_a_data_dir_is_prepared_into_the_run_and_trained_on(audiocaps_dir, tmp_path, caplog):
    """Without --model, a data directory gets the recipe for data without pretrained weights. Its clips of 3 to
    30 s are used whole, but for the 30 s ones, cut to --max-seconds 25 with a warning and in the manifest."""
    out = tmp_path / "run"
    tiny_transformer = {**TINY_MODEL, "transformer_dim": 8, "transformer_ff_dim": 16, "transformer_heads": 2,
                        "transformer_layers": 1}
    argv = ["--data-dir", str(audiocaps_dir), "--epochs", "1", "--batch-size", "8", "--workers", "1",
            "--model-overrides", json.dumps(tiny_transformer), "--max-seconds", "25", "--out", str(out)]
    assert fit.main(argv) == 0
    long_clips = [f"clip{i:03d}xyz_30" for i in range(24) if DATA_DIR_SECONDS[i % len(DATA_DIR_SECONDS)] == 30.0]
    assert len(long_clips) == 3
    assert sum("cut to its first 25 s (--max-seconds)" in message for message in caplog.messages) == 4  # + 1 test
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == {"kind": "data_dir", "path": str(audiocaps_dir.resolve())}
    assert config["model"] == fit.DEFAULT_DATA_MODEL == "tempatt-mfcc-transformer-specaug"
    model = keras.models.load_model(out / "best.keras")
    assert type(model.decoder).__name__ == "TransformerDecoder" and model.decoding_beam_size == 3
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["record_fields"] == ["mfcc"] and manifest["complete"]
    assert [manifest["splits"][s]["clips"] for s in ("train", "val", "test")] == [24, 4, 4]
    assert manifest["options"]["max_seconds"] == 25.0 and manifest["feature_shapes"] == {"mfcc": [None, 20]}
    assert manifest["splits"]["train"]["cut"] == [{"key": key, "seconds": 30.0} for key in long_clips]
    assert manifest["splits"]["test"]["cut"] == [{"key": "clip031xyz_30", "seconds": 30.0}]
    records = TFRecordSource(out / "data", "train").clip_dataset(["mfcc"])
    expected = [round(min(DATA_DIR_SECONDS[i % len(DATA_DIR_SECONDS)], 25.0) * 16000) for i in range(24)]
    found = [(int(clip["num_samples"]), clip["mfcc"].shape[0]) for clip in records]
    assert [frames for _, frames in found] == [num_mfcc_frames(n) for n, _ in found]
    assert np.abs(np.array([n for n, _ in found]) - expected).max() <= 2  # 44.1 kHz there and back: +-1 sample
    with open(out / "test_predictions.csv", newline="") as f:
        assert [row["youtube_id"] for row in csv.DictReader(f)] == [f"clip{i:03d}xyz" for i in range(28, 32)]
    assert set(json.loads((out / "metrics.json").read_text())["test"]) == EVALUATION_KEYS


def test_the_default_batch_gives_small_sets_enough_steps_per_epoch():
    assert fit.default_batch_size(49838) == 128  # AudioCaps train: the authors' batch
    assert fit.default_batch_size(800) == 32  # the demo: 25 steps per epoch
    assert fit.default_batch_size(30) == 8


def test_bad_options_are_reported(cache, tmp_path, capsys):
    assert fit.main(["--model-overrides", "{units: 8}", "--out", str(tmp_path / "a")]) == 1
    assert "--model-overrides is not JSON" in capsys.readouterr().err
    assert fit.main(["--model-overrides", '{"unitz": 8}', "--out", str(tmp_path / "b")]) == 1
    assert "unitz" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------------------------
# Options


def _parsed(argv):
    return FitConfig.from_args(fit.build_parser().parse_args(argv))


def test_fit_config_round_trips_through_config_json(tmp_path):
    (tmp_path / "data").mkdir()
    configs = [
        FitConfig(),
        _parsed(["--model", "topdown-alignedatt", "--attributes", "gt", "--epochs", "2.5", "--lr", "0.01"])[0],
        _parsed(["--model", "vggish-lstm", "--vggish-trainable", "--data-dir", str(tmp_path / "data")])[0],
        _parsed(["--tfrecords", str(tmp_path / "data"), *TINY[2:]])[0],
        _parsed([*TINY, "--demo-seed", "3", "--strategy", "mirrored", "--patience", "0"])[0],
    ]
    for config in configs:
        options = json.loads(json.dumps(config.to_json()))  # as config.json holds them
        assert FitConfig.from_json(options) == config
        assert FitConfig.from_json(options).to_json() == config.to_json()
    assert configs[0].to_json()["data"] == {"kind": "demo", "clips": fit.DEMO_CLIPS, "seed": fit.DEMO_SEED}
    # No --model: the paper's model on the demo, the recipe for data without pretrained weights on a user's data.
    assert [c.model for c in configs] == [fit.DEFAULT_MODEL, "topdown-alignedatt", "vggish-lstm",
                                          fit.DEFAULT_DATA_MODEL, fit.DEFAULT_MODEL]
    assert configs[2].to_json()["data"] == {"kind": "data_dir", "path": str((tmp_path / "data").resolve())}
    # A run directory written before FitConfig existed: the same options, keys and order; the options added since
    # take their defaults, which do what that run did.
    saved = json.loads((REPO / "tests" / "fixtures" / "legacy_0_1" / "run" / "config.json").read_text())
    options = {k: v for k, v in saved.items() if k not in ("format", "version", "created")}
    converted = FitConfig.from_json(options).to_json()
    assert [(k, v) for k, v in converted.items() if k in options] == list(options.items())
    added = {k: v for k, v in converted.items() if k not in options}
    # no_repeat_ngram_size None: the model's own setting, 0 (off) for every model such a run could have trained.
    new_options = {"average_checkpoints": 0, "average_checkpoints_of": "best", "no_repeat_ngram_size": None}
    assert new_options.items() <= added.items()
    # beam_size's default is now None, the model's own: 1 (greedy) for every model such a run could have trained.
    assert options["beam_size"] == 1
    assert _parsed([*TINY, "--epochs", "1"])[0].to_json() == {**options, **added, "beam_size": None}
    with pytest.raises(fit.FitError, match="unknown options.*colour"):
        FitConfig.from_json({**options, "colour": "red"})


def test_every_fit_config_option_has_exactly_one_flag():
    parser = fit.build_parser()
    actions = [action for action in parser._actions if action.dest != "help"]
    fields = dataclasses.fields(FitConfig)
    for field in fields:
        flags = [option for action in actions if action.dest == field.name for option in action.option_strings]
        assert len(flags) == 1, f"FitConfig.{field.name} has the flags {flags}"
        assert parser.get_default(field.name) is None, f"{flags[0]} has a default: `given` would not see it"
    assert {action.dest for action in actions} - {field.name for field in fields} == set(RUN_ARGUMENTS)
    # each flag given alone is the one option given
    for field in fields:
        (action,) = [action for action in actions if action.dest == field.name]
        if action.nargs == 0:
            value = []
        elif action.type is pathlib.Path:
            value = [str(REPO)]
        elif action.choices:
            value = [action.choices[-1]]
        else:
            value = [{"model_overrides": "{}", "mixup": "0.5"}.get(field.name, "16")]
        assert _parsed([action.option_strings[0], *value])[1] == {FitConfig.option_of(field)}, action.option_strings


def test_bad_option_values_are_fit_errors_with_the_flag():
    for argv, message in [(["--epochs", "0"], "--epochs must be positive, got 0"),
                          (["--patience", "-1"], "--patience and --lr-patience must be >= 0"),
                          (["--demo-clips", "5"], "--demo-clips must be at least 10"),
                          (["--data-dir", str(REPO), "--demo-seed", "1"], "do not go with --data-dir"),
                          (["--tfrecords", str(REPO / "nowhere")], "no such directory"),
                          (["--model-overrides", "[8]"], "must be a JSON object"),
                          (["--no-repeat-ngram-size", "-1"], "--no-repeat-ngram-size must be 0 \\(off\\) or more"),
                          (["--average-checkpoints", "1"], "--average-checkpoints must be 0 \\(off\\) or at least 2"),
                          (["--average-checkpoints", "-2"], "--average-checkpoints must be 0"),
                          (["--model", "1nn-mfcc", "--no-repeat-ngram-size", "3"], "do not apply to 1nn-mfcc"),
                          (["--model", "1nn-vggish", "--average-checkpoints", "3"], "do not apply to 1nn-vggish")]:
        with pytest.raises(fit.FitError, match=message):
            _parsed(argv)
    with pytest.raises(fit.FitError, match="--average-checkpoints-of must be one of best, last"):
        FitConfig(average_checkpoints=2, average_checkpoints_of="first")
    # without --average-checkpoints there is nothing to choose from
    assert _parsed(["--average-checkpoints-of", "last"])[0].average_checkpoints_of == "best"
    config, _ = _parsed(["--average-checkpoints", "3", "--average-checkpoints-of", "last"])
    assert config.average_checkpoints_of == "last"


def test_help_lists_the_decoding_and_averaging_options():
    text = " ".join(fit.build_parser().format_help().split())
    for flag in ("--no-repeat-ngram-size N", "--average-checkpoints K", "--average-checkpoints-of {best,last}"):
        assert flag in text
    assert "except --strategy, --beam-size and --no-repeat-ngram-size" in text


# ---------------------------------------------------------------------------------------------------------------
# Pieces


def test_the_loss_is_label_smoothed_cross_entropy_over_non_padding_tokens():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal([2, 4, 5]).astype(np.float32)
    targets = np.array([[3, 2, 0, 0], [4, 1, 2, 0]], np.int32)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    eps, expected, count = 0.02, 0.0, 0
    for b in range(2):
        for t in range(4):
            if targets[b, t]:
                q = np.full(5, eps / 5)
                q[targets[b, t]] += 1 - eps
                expected -= (q * log_p[b, t]).sum()
                count += 1
    loss = MaskedSmoothedCrossEntropy(0.02)
    np.testing.assert_allclose(float(loss(targets, logits)), expected / count, rtol=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    np.testing.assert_allclose(float(MaskedSmoothedCrossEntropy(0.0)(targets, logits)),
                               float(plain(targets, logits)), rtol=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.label_smoothing == 0.02


class _Scripted:
    """A validation function returning scripted CIDEr scores."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, model):
        return {"CIDEr": self.values.pop(0), "BLEU_4": 0.0}, []


def test_validation_keeps_the_best_decays_the_learning_rate_and_stops_early(tmp_path):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    saved = []
    callback = ValidationCallback(tmp_path, _Scripted([10.0, 12.0, 11.0, 12.0, 9.0, 5.0]),
                                  lambda m: saved.append(len(callback.history)), steps_per_period=1,
                                  patience=4, lr_patience=2, min_learning_rate=4e-4)
    history = model.fit(np.zeros([4, 1]), np.zeros([4, 1]), epochs=10, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 6  # 4 validations without beating 12.0 after the second
    assert history.history["val_CIDEr"] == [10.0, 12.0, 11.0, 12.0, 9.0, 5.0]
    assert saved == [1, 2]  # saved when the score improved: not for a tie
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["best"]["period"] == 2 and state["stopped_early"]
    rates = [entry["learning_rate"] for entry in state["history"]]
    np.testing.assert_allclose(rates, [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4], rtol=1e-6)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 4e-4, rtol=1e-6)  # floored


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint averaging, n-gram blocking


def _checkpoint(out, period):
    with np.load(averaging.checkpoint_path(out, period)) as saved:
        return {int(key): saved[key] for key in saved.files}


def _averaged_variables(path):
    """{index in model.weights: value} of the variables averaging averages, in the model saved at `path`."""
    model = keras.models.load_model(path)
    return {i: keras.ops.convert_to_numpy(model.weights[i]) for i in averaging.averaged_indices(model)}


def test_checkpoint_averaging_averages_the_k_best_checkpoints_and_records_its_choice(cache, tmp_path, capsys):
    out = tmp_path / "run"
    assert fit.main([*TINY, "--epochs", "3", "--average-checkpoints", "2", "--out", str(out)]) == 0
    state = json.loads((out / "state.json").read_text())
    record = state["averaging"]
    ranked = sorted(state["history"], key=lambda entry: (-entry["val"]["CIDEr"], entry["period"]))
    assert record["periods"] == sorted(entry["period"] for entry in ranked[:2]) and record["of"] == "best"
    assert record["best_period"] == state["best"]["period"] == ranked[0]["period"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"period-{p:04d}.npz" for p in record["periods"]]

    # The average is the mean of the kept files; the best checkpoint is the file of its period.
    used = record["used"]
    averaged = _averaged_variables(out / ("best.keras" if used == "averaged" else "averaged.keras"))
    single = _averaged_variables(out / ("best_checkpoint.keras" if used == "averaged" else "best.keras"))
    first, second = (_checkpoint(out, period) for period in record["periods"])
    best = _checkpoint(out, record["best_period"])
    assert set(averaged) == set(first) == set(single)
    for i, value in averaged.items():
        np.testing.assert_allclose(value, (first[i].astype(np.float64) + second[i]) / 2, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(single[i], best[i])
    assert any(not np.allclose(averaged[i], single[i]) for i in averaged)

    # metrics.json: which model the test split was scored with, and both validation scores.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["averaging"] == record and record["val_best"] == state["best"]["val"]
    assert set(record["val_averaged"]) == EVALUATION_KEYS
    assert used == ("averaged" if record["val_averaged"]["CIDEr"] >= record["val_best"]["CIDEr"] else "best")
    assert metrics["val"] == record["val_averaged" if used == "averaged" else "val_best"]
    assert "checkpoint averaging: validation CIDEr" in capsys.readouterr().out


class KillAfterEpochs(keras.callbacks.Callback):
    """Kills the run once `epochs` epochs are backed up (extra callbacks come after BackupAndRestore)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise Killed()


def _repeats(caption, n):
    """Whether `caption` holds some n-gram (of words) twice."""
    words = caption.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def test_a_killed_run_with_averaging_keeps_its_checkpoints_and_resumes_with_no_repeated_ngrams(cache, tmp_path,
                                                                                                 monkeypatch):
    out = tmp_path / "run"
    argv = [*TINY, "--epochs", "3", "--average-checkpoints", "2", "--average-checkpoints-of", "last", "--out", str(out)]
    with pytest.raises(Killed):
        fit.main(argv, callbacks=[KillAfterEpochs(2)])
    checkpoints = out / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["period-0001.npz", "period-0002.npz"]
    kept = (checkpoints / "period-0002.npz").read_bytes()

    caption_split, decoded = evaluation.caption_split, []

    def recording(model, dataset, fields, **options):
        decoded.append(options.get("no_repeat_ngram_size", 0))
        return caption_split(model, dataset, fields, **options)

    monkeypatch.setattr(evaluation, "caption_split", recording)
    recorder = Recorder()
    # The same command, with n-gram blocking: a change of decoding a resumed run may make.
    assert fit.main([*argv, "--no-repeat-ngram-size", "2"], callbacks=[recorder]) == 0
    assert recorder.epochs == [2]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["period-0002.npz", "period-0003.npz"]  # pruned to K
    assert (checkpoints / "period-0002.npz").read_bytes() == kept  # survived the restart as it was
    record = json.loads((out / "metrics.json").read_text())["averaging"]
    assert (record["of"], record["periods"]) == ("last", [2, 3])

    assert decoded == [2, 2, 2]  # validating the third epoch and the average, then the test split
    with open(out / "test_predictions.csv", newline="") as f:
        captions = [row["caption"] for row in csv.DictReader(f)]
    assert captions and not any(_repeats(caption, 2) for caption in captions)
    # The same model without the option repeats itself.
    model = keras.models.load_model(out / "best.keras")
    dataset = evaluation_dataset(TFRecordSource(cache / f"demo-{CLIPS}-0-mfcc", "test"), ("mfcc",), batch_size=8)
    rows, _ = caption_split(model, dataset, ("mfcc",))
    assert any(_repeats(row["caption"], 2) for row in rows)


def test_a_recipe_run_validates_greedily_and_tests_with_the_recipe_s_beam(cache, tmp_path, monkeypatch, capsys):
    """tempatt-mfcc-lstm-specaug's own decoding (beam 3, no repeated 3-gram) reaches the test split with no
    decoding flag given; validation stays greedy; the saved model keeps the recipe."""
    caption_split, decoded = evaluation.caption_split, []

    def recording(model, dataset, fields, **options):
        decoded.append((model.resolve_beam(options.get("beam_size", 1)),
                        model.resolve_no_repeat(options.get("no_repeat_ngram_size"))))
        return caption_split(model, dataset, fields, **options)

    monkeypatch.setattr(evaluation, "caption_split", recording)
    out = tmp_path / "run"
    assert fit.main([*TINY, "--model", "tempatt-mfcc-lstm-specaug", "--epochs", "1", "--out", str(out)]) == 0
    assert decoded == [(1, 3), (3, 3)]  # validating the epoch, then the test split
    assert "captioning the test split (beam 3, no repeated 3-gram)" in capsys.readouterr().out
    model = keras.models.load_model(out / "best.keras")
    assert (model.decoding_beam_size, model.no_repeat_ngram_size) == (3, 3)
    assert model.augmentation is not None and model.units == 8
    assert json.loads((out / "config.json").read_text())["beam_size"] is None  # the model's own, as given


def test_a_run_whose_config_json_predates_an_option_resumes_with_its_default(tmp_path):
    """config.json as version 0.1 wrote it, without the options added since: they take their defaults (what that
    run did), so the same command (or --resume) resumes it; a resumable one may be given anew."""
    legacy = json.loads((REPO / "tests" / "fixtures" / "legacy_0_1" / "run" / "config.json").read_text())
    out = tmp_path / "run"
    out.mkdir()
    run_dir_lib.write_json_atomically(out / "config.json", legacy)
    run_dir_lib.write_state(out, {"status": "training", "history": [], "best": None, "stopped_early": False})
    for argv in ([*TINY, "--epochs", "1", "--no-repeat-ngram-size", "3"], ["--resume", "--no-repeat-ngram-size", "3"]):
        config, given = _parsed(argv)
        _, opened, _, _ = trainer._open_run(config, given, out, resume="--resume" in argv)
        assert opened.no_repeat_ngram_size == 3 and opened.average_checkpoints == 0
        assert opened.average_checkpoints_of == "best" and opened.epochs == 1
    config, given = _parsed([*TINY, "--epochs", "1", "--average-checkpoints", "2"])
    with pytest.raises(run_dir_lib.RunDirError, match="average_checkpoints: 0 in the run, 2 now"):
        trainer._open_run(config, given, out, resume=False)
