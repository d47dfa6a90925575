"""The options of `python -m audiocaps_tf.fit`: `FitConfig`, their one list, and what is derived from it.

    FitConfig                    every option of a run, with its default; checked when built (a FitError says why)
    FitConfig.from_args(args)    (the options of parsed command-line arguments, the names of those given explicitly)
    FitConfig.to_json/from_json  the options as RUN_DIR/config.json holds them (`training/run_dir.py`)
    add_arguments(parser)        the command line: `_ARGUMENTS`, one flag per option plus the run-time arguments

In config.json the four data fields (data_dir, tfrecords, demo_clips, demo_seed) are one option, "data":
{"kind": "demo", "clips": N, "seed": S}, {"kind": "data_dir", "path": DIR}, {"kind": "data_dirs", "paths": [DIR, ...]}
(several datasets at once) or {"kind": "tfrecords", "path": DIR}.
Nothing here imports TensorFlow; the model registry is imported when a FitConfig is built.
"""

import copy
import dataclasses
import json
import pathlib

from audiocaps_tf import params

__all__ = ["FitConfig", "FitError", "add_arguments", "dataset_names", "default_batch_size", "RUN_ARGUMENTS"]

# What `fit` trains without --model. On the demo dataset: the paper's TempAtt-MFCC-LSTM (its test sounds come from
# the generator of its training sounds, where it scores best and trains in minutes). On a user's data (--data-dir,
# --tfrecords): the recipe that generalised best to recordings never heard in training on the real-sound benchmark
# without pretrained weights (benchmarks/real_sounds; the README's Models section has the table).
DEFAULT_MODEL = "tempatt-mfcc-lstm"
DEFAULT_DATA_MODEL = "tempatt-mfcc-transformer-specaug"
# The demo run: sized to finish in 5-10 minutes on 2 CPU cores (measured: 5 min 6 s from an empty cache, demo
# synthesis and feature preparation included; 4 min 22 s once they are cached).
DEMO_CLIPS = 1000
DEMO_SEED = 0
EPOCHS = 40
BATCH_SIZE = 128  # the authors'
MIN_STEPS_PER_EPOCH = 25  # the default batch is halved (down to 8) until an epoch has this many steps
LEARNING_RATE = 1e-3
MIN_LEARNING_RATE = 1e-4
CLIP_NORM = 0.4
LABEL_SMOOTHING = 0.02
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}  # not options: the authors'
VALIDATION_FREQUENCY = 1.0
AVERAGE_OF = ("best", "last")  # which checkpoints --average-checkpoints averages
PATIENCE = 8
LR_PATIENCE = 3


class FitError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


def default_batch_size(pairs):
    """The authors' batch (128), halved while an epoch of `pairs` training pairs would have fewer than
    MIN_STEPS_PER_EPOCH steps, down to 8: small sets get enough updates per epoch."""
    batch = BATCH_SIZE
    while batch > 8 and pairs / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


_DATA = {"option": "data"}  # field metadata: the config.json option the field is part of (default: its name)
_POSITIVE = {"positive": True}  # field metadata: must be > 0 (None, where allowed, is not checked)


def _field(default, metadata):
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class FitConfig:
    """The options of a fit run, in config.json's order; the defaults are the command line's.

    `attributes` is only set for semantic models ("1nn" when None), `vggish_weights` and `vggish_trainable` only for
    VGGish models (the weights default to the TF Hub handle; a path is made absolute): others get None / False.
    """

    model: str | None = None  # None: DEFAULT_MODEL on the demo dataset, else DEFAULT_DATA_MODEL
    model_overrides: dict = dataclasses.field(default_factory=dict)  # model hyper-parameters
    data_dir: str | list | None = _field(None, _DATA)  # AudioCaps-layout directories (absolute; one: a str), or
    tfrecords: str | None = _field(None, _DATA)  # a prepared directory (absolute), or neither: the demo dataset
    demo_clips: int = _field(DEMO_CLIPS, _DATA)
    demo_seed: int = _field(DEMO_SEED, _DATA)
    max_seconds: float | None = _field(None, _POSITIVE)  # clips cut to it when fit prepares them; None: 30 s
    epochs: float = _field(EPOCHS, _POSITIVE)
    batch_size: int | None = _field(None, _POSITIVE)  # per replica; None: `default_batch_size` of the training set
    learning_rate: float = _field(LEARNING_RATE, _POSITIVE)
    min_learning_rate: float = MIN_LEARNING_RATE
    clip_norm: float = CLIP_NORM
    label_smoothing: float = LABEL_SMOOTHING
    mixup: float = 0.0  # probability of a mixed training pair (`data.mixup`); 0: off
    validation_frequency: float = _field(VALIDATION_FREQUENCY, _POSITIVE)
    patience: int = PATIENCE
    lr_patience: int = LR_PATIENCE
    average_checkpoints: int = 0  # 0: off
    average_checkpoints_of: str = "best"  # one of AVERAGE_OF
    beam_size: int | None = _field(None, _POSITIVE)  # None: the model's own (its hyper-parameter)
    no_repeat_ngram_size: int | None = None  # None: the model's own (its hyper-parameter); 0: off
    strategy: str = "auto"
    seed: int = 0
    attributes: str | None = None
    vggish_weights: str | None = None
    vggish_trainable: bool = False

    def __post_init__(self):
        from audiocaps_tf.models.registry import get_spec, resolve_hyper_parameters

        if self.model is None:
            self.model = DEFAULT_MODEL if self.data_dir is None and self.tfrecords is None else DEFAULT_DATA_MODEL
        try:
            spec = get_spec(self.model)
        except ValueError as err:
            raise FitError(str(err)) from None
        self.model_overrides = dict(self.model_overrides or {})
        self.attributes = ("1nn" if self.attributes is None else self.attributes) if spec.uses_attributes else None
        self.vggish_weights = _vggish_source(self.vggish_weights) if spec.uses_vggish else None
        self.vggish_trainable = bool(self.vggish_trainable) if spec.uses_vggish else False
        if float(self.epochs).is_integer():
            self.epochs = int(self.epochs)
        if self.data_dir is not None and self.tfrecords is not None:
            raise FitError("--data-dir and --tfrecords do not go together")
        if isinstance(self.data_dir, (list, tuple)):
            self.data_dir = self.data_dir[0] if len(self.data_dir) == 1 else list(self.data_dir)
            if isinstance(self.data_dir, list):
                dataset_names(self.data_dir)  # distinct names, or a FitError
                if spec.uses_attributes:
                    raise FitError(f"{self.model} (attribute words from the nearest training clip) trains on one "
                                   "dataset: give one --data-dir")
        if self.tfrecords is not None and self.max_seconds is not None:
            raise FitError("--max-seconds applies when fit prepares the clips (--data-dir, the demo); --tfrecords "
                           "holds them as `prepare --max-seconds` cut them: prepare them again to change it")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.metadata.get("positive") and value is not None and not value > 0:
                raise FitError(f"--{field.name.replace('_', '-')} must be positive, got {value}")
        if self.patience < 0 or self.lr_patience < 0:
            raise FitError("--patience and --lr-patience must be >= 0")
        if not 0.0 <= self.mixup <= 1.0:
            raise FitError(f"--mixup must be a probability in [0, 1], got {self.mixup}")
        if spec.is_retrieval and self.mixup:
            raise FitError(f"--mixup does not apply to {self.model}: a 1NN model is not trained")
        self._check_decoding_and_averaging(spec)
        try:
            resolve_hyper_parameters(self.model_overrides)
        except TypeError as err:
            raise FitError(f"--model-overrides: {err}") from None
        if self.data["kind"] == "demo" and self.demo_clips < 10:
            raise FitError("--demo-clips must be at least 10 (train, val and test need clips)")

    def _check_decoding_and_averaging(self, spec):
        if self.no_repeat_ngram_size is not None and self.no_repeat_ngram_size < 0:
            raise FitError(f"--no-repeat-ngram-size must be 0 (off) or more, got {self.no_repeat_ngram_size}")
        if self.average_checkpoints < 0 or self.average_checkpoints == 1:
            raise FitError(f"--average-checkpoints must be 0 (off) or at least 2, got {self.average_checkpoints}")
        if self.average_checkpoints_of not in AVERAGE_OF:
            raise FitError(f"--average-checkpoints-of must be one of {', '.join(AVERAGE_OF)}, got "
                           f"{self.average_checkpoints_of!r}")
        if not self.average_checkpoints:
            self.average_checkpoints_of = "best"  # no checkpoints to choose
        if spec.is_retrieval and (self.no_repeat_ngram_size or self.average_checkpoints):
            raise FitError(f"--no-repeat-ngram-size and --average-checkpoints do not apply to {self.model}: a 1NN "
                           "model is not trained and returns training captions as they are")

    @property
    def data(self):
        """The dataset as config.json's "data" option (module docstring)."""
        if isinstance(self.data_dir, list):
            return {"kind": "data_dirs", "paths": self.data_dir}
        if self.data_dir is not None:
            return {"kind": "data_dir", "path": self.data_dir}
        if self.tfrecords is not None:
            return {"kind": "tfrecords", "path": self.tfrecords}
        return {"kind": "demo", "clips": self.demo_clips, "seed": self.demo_seed}

    @property
    def clip_seconds_limit(self):
        """The --max-seconds clips are cut to when fit prepares them."""
        return params.MAX_CLIP_SECONDS if self.max_seconds is None else float(self.max_seconds)

    @staticmethod
    def option_of(field):
        """The config.json option a field (a `dataclasses.Field`) is part of."""
        return field.metadata.get("option", field.name)

    def to_json(self):
        """The options as config.json holds them (a JSON-serialisable dict, in config.json's order)."""
        options = {}
        for field in dataclasses.fields(self):
            name = self.option_of(field)
            options[name] = self.data if name == "data" else copy.deepcopy(getattr(self, field.name))
        return options

    @classmethod
    def from_json(cls, options):
        """The FitConfig of config.json's options (`to_json`); a FitError for an option it does not know."""
        unknown = set(options) - {cls.option_of(field) for field in dataclasses.fields(cls)}
        if unknown:
            raise FitError(f"unknown options in the run's options: {', '.join(sorted(unknown))}")
        values = dict(options)
        data = values.pop("data", None)
        if data is not None:
            kind = data.get("kind")
            if kind == "demo":
                values.update(demo_clips=data["clips"], demo_seed=data["seed"])
            elif kind in ("data_dir", "tfrecords"):
                values[kind] = data["path"]
            elif kind == "data_dirs":
                values["data_dir"] = list(data["paths"])
            else:
                raise FitError(f"unknown kind of data in the run's options: {json.dumps(data)}")
        return cls(**values)

    @classmethod
    def from_args(cls, args):
        """(the FitConfig of parsed arguments `args`, names of the config.json options given explicitly).

        An argument that is None was not given and takes its default.
        """
        fields = dataclasses.fields(cls)
        values = {field.name: getattr(args, field.name) for field in fields
                  if getattr(args, field.name, None) is not None}
        given = {cls.option_of(field) for field in fields if field.name in values}
        if ("data_dir" in values or "tfrecords" in values) and ("demo_clips" in values or "demo_seed" in values):
            raise FitError("--demo-clips and --demo-seed describe the demo dataset; they do not go with --data-dir or "
                           "--tfrecords")
        for name in ("data_dir", "tfrecords"):
            if name in values:
                paths = values[name] if isinstance(values[name], list) else [values[name]]
                for path in map(pathlib.Path, paths):
                    if not path.is_dir():
                        raise FitError(f"--{name.replace('_', '-')} {path}: no such directory")
                resolved = [str(pathlib.Path(path).resolve()) for path in paths]
                if len(set(resolved)) < len(resolved):
                    raise FitError(f"--{name.replace('_', '-')}: a directory given twice: {', '.join(resolved)}")
                values[name] = resolved if len(resolved) > 1 else resolved[0]
        if not values.get("demo_clips", 1):
            del values["demo_clips"]  # --demo-clips 0: the default, as it always was
        if "model_overrides" in values:
            values["model_overrides"] = _model_overrides(values["model_overrides"])
        return cls(**values), given


def dataset_names(paths):
    """The names that keep several datasets' scores apart: their directories' names (distinct, or a FitError)."""
    names = [pathlib.Path(path).name for path in paths]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FitError(f"--data-dir: several directories named {', '.join(repeated)}; their names keep the datasets' "
                       "scores apart: rename one")
    return names


def _model_overrides(text):
    try:
        overrides = json.loads(text)
    except ValueError as err:
        raise FitError(f"--model-overrides is not JSON: {err}") from None
    if not isinstance(overrides, dict):
        raise FitError("--model-overrides must be a JSON object, e.g. '{\"units\": 8}'")
    return overrides


def _vggish_source(value):
    if value is None:
        return params.VGGISH_HUB_HANDLE
    if value.startswith(("http://", "https://", "gs://")):
        return value
    return str(pathlib.Path(value).resolve())


def _arguments():
    """The command line in --help order: (group, add_argument's arguments). The dest of a flag is a FitConfig field,
    or one of RUN_ARGUMENTS. Group None: the options; "data": mutually exclusive; "advanced": its own section."""
    from audiocaps_tf.models.registry import ATTRIBUTE_SOURCES, MODEL_NAMES
    from audiocaps_tf.training.strategy import STRATEGIES

    return [
        (None, "--model", dict(choices=MODEL_NAMES, metavar="NAME",
                               help=f"model to train (default: {DEFAULT_MODEL} on the demo dataset, "
                                    f"{DEFAULT_DATA_MODEL} with --data-dir or --tfrecords); one of: "
                                    f"{', '.join(MODEL_NAMES)}")),
        ("data", "--data-dir", dict(type=pathlib.Path, metavar="DIR", nargs="+", action="extend",
                                    help="AudioCaps-layout directory with audio; its features are prepared into "
                                         "RUN_DIR/data. Several (--data-dir A B): trained on together, each "
                                         "validated and tested on its own splits")),
        ("data", "--tfrecords", dict(type=pathlib.Path, metavar="DIR",
                                     help="directory written by `python -m audiocaps_tf.data prepare`")),
        (None, "--out", dict(type=pathlib.Path, metavar="RUN_DIR",
                             help="run directory (default runs/<model>-<YYYYmmdd-HHMMSS>); never overwritten")),
        (None, "--resume", dict(action="store_true",
                                help="continue the unfinished run in --out with its own options (options given "
                                     "again must match, except --strategy, --beam-size and "
                                     "--no-repeat-ngram-size)")),
        (None, "--epochs", dict(type=float, metavar="N", help=f"epochs of the training data (default {EPOCHS})")),
        (None, "--batch-size", dict(type=int, metavar="B",
                                    help=f"captions per batch and replica (default: {BATCH_SIZE}, the authors', "
                                         f"halved for small training sets until an epoch has {MIN_STEPS_PER_EPOCH} "
                                         "steps: 32 for the demo)")),
        (None, "--lr", dict(dest="learning_rate", type=float, metavar="LR",
                            help=f"initial learning rate (default {LEARNING_RATE:g})")),
        (None, "--min-lr", dict(dest="min_learning_rate", type=float, metavar="LR",
                                help=f"floor of the plateau decay (default {MIN_LEARNING_RATE:g})")),
        (None, "--beam-size", dict(type=int, metavar="K",
                                   help="beam width for the test split (validation is greedy); default: the "
                                        "model's own beam_size hyper-parameter (1 for the paper's models), which "
                                        "caption and export also use")),
        (None, "--no-repeat-ngram-size", dict(type=int, metavar="N",
                                              help="never repeat an N-gram within a caption when decoding the "
                                                   "validation and test splits (e.g. 3; 0: off, the paper's "
                                                   "decoding; default: the model's own no_repeat_ngram_size "
                                                   "hyper-parameter, which caption and export also use)")),
        (None, "--strategy", dict(choices=STRATEGIES, help="tf.distribute strategy (default auto)")),
        (None, "--seed", dict(type=int, metavar="S", help="random seed (default 0)")),
        (None, "--validation-frequency", dict(type=float, metavar="EPOCHS",
                                              help="epochs between validations, e.g. 0.3 as the authors (default 1)")),
        (None, "--mixup", dict(type=float, metavar="P",
                               help="replace a training pair, with probability P, by its clip's first half then "
                                    "another clip's, captioned \"<caption> then <other caption>\" (default 0: off)")),
        (None, "--patience", dict(type=int, metavar="N", help=f"stop after N validations without a better CIDEr "
                                                              f"(default {PATIENCE}; 0: never)")),
        (None, "--lr-patience", dict(type=int, metavar="N",
                                     help=f"halve the learning rate after N validations without improvement "
                                          f"(default {LR_PATIENCE}; 0: never)")),
        (None, "--average-checkpoints", dict(type=int, metavar="K",
                                             help="average the weights of K validated checkpoints (the K best by "
                                                  "validation CIDEr, or see --average-checkpoints-of) into the "
                                                  "final model, used if its validation CIDEr is at least the best "
                                                  "checkpoint's (default 0: off)")),
        (None, "--average-checkpoints-of", dict(choices=AVERAGE_OF,
                                                help="which K checkpoints --average-checkpoints averages: best "
                                                     "(default) or last")),
        (None, "--attributes", dict(choices=ATTRIBUTE_SOURCES,
                                    help="attribute words of semantic models: 1nn (default) or gt")),
        (None, "--vggish-weights", dict(metavar="SOURCE", help="VGGish weights: TF Hub handle (default), extracted "
                                                               "module dir or TF1 checkpoint")),
        (None, "--vggish-trainable", dict(action="store_true", default=None,
                                          help="fine-tune VGGish end to end from waveforms (VGGish models)")),
        (None, "--max-seconds", dict(type=float, metavar="S",
                                     help="clips are used whole, whatever their length, up to S seconds: longer "
                                          f"ones are cut to S, reported (default {params.MAX_CLIP_SECONDS:g}; "
                                          "with --data-dir or the demo)")),
        (None, "--demo-clips", dict(type=int, metavar="N", help=f"clips of the demo dataset (default {DEMO_CLIPS})")),
        (None, "--demo-seed", dict(type=int, metavar="S", help=f"seed of the demo dataset (default {DEMO_SEED})")),
        (None, "--workers", dict(type=int, metavar="N", help="processes decoding or synthesising audio while "
                                                             "preparing data (default: one per CPU)")),
        ("advanced", "--model-overrides", dict(metavar="JSON", help="model hyper-parameters as JSON, e.g. "
                                                                    "'{\"units\": 8, \"embedding_dim\": 8}'")),
        ("advanced", "--label-smoothing", dict(type=float, help=f"(default {LABEL_SMOOTHING})")),
        ("advanced", "--clip-norm", dict(type=float, help=f"global gradient-norm clipping (default {CLIP_NORM})")),
    ]


# Arguments of the command line that are not options of the run (not in config.json): `trainer.run`'s arguments.
RUN_ARGUMENTS = ("out", "resume", "workers")


def add_arguments(parser):
    """Adds fit's command line to `parser`: a flag for every FitConfig field (its dest) and for RUN_ARGUMENTS. Every
    FitConfig flag defaults to None (not given: `FitConfig.from_args` takes the field's default)."""
    groups = {None: parser, "data": parser.add_mutually_exclusive_group(),
              "advanced": parser.add_argument_group("advanced")}
    for group, flag, keywords in _arguments():
        groups[group].add_argument(flag, **keywords)
    return parser
