"""The data of a `fit` run: which prepared TFRecords it reads, built from the demo, a data dir, or given.

    --tfrecords DIR   a `prepare` output: read as it is (it must hold the model's feature fields)
    --data-dir DIR    an AudioCaps-layout directory with audio: `prepare` writes the features the model needs
                      into RUN_DIR/data once (resumable), and training reads those, each clip whole (cut to
                      --max-seconds, 30 s by default, if longer). Decoding the audio and
                      computing features on every pass would cost more than the model itself; a prepared copy
                      is small (MFCC: ~20 kB per clip, VGGish fc2+conv4+conv3: ~36 kB).
    --data-dir A B    several datasets: each prepared into RUN_DIR/data/<its directory's name>/, all with the
                      vocabularies of every dataset's train captions (`prepare`'s vocabulary_dirs)
    (neither)         the built-in demo dataset, synthesised once into the cache ($AUDIOCAPS_TF_CACHE, else
                      ~/.cache/audiocaps_tf): CACHE/demo-<clips>-<seed>/ (audio, CSVs) and
                      CACHE/demo-<clips>-<seed>-<features>/ (its prepared TFRecords), reused by later runs.

Also here: per-clip metadata of a split and attribute overrides (the 1NN attribute variant).
"""

import hashlib
import os
import pathlib

import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.features import prepare_features
from audiocaps_tf.files import exclusive_lock
from audiocaps_tf.data import demo, pipeline, prepare
from audiocaps_tf.training.config import dataset_names

__all__ = [
    "CACHE_ENV",
    "cache_root",
    "demo_paths",
    "prepared_directory",
    "clip_table",
    "AttributeOverride",
    "training_stream",
]

CACHE_ENV = "AUDIOCAPS_TF_CACHE"


def cache_root():
    """$AUDIOCAPS_TF_CACHE, else ~/.cache/audiocaps_tf."""
    return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "audiocaps_tf")


def _features_tag(features, vggish_weights):
    tag = "+".join(features)
    if "vggish" in features:  # prepared VGGish features depend on the weights they were computed with
        tag += "-" + hashlib.sha1(str(vggish_weights).encode()).hexdigest()[:8]
    return tag


def demo_paths(clips, seed, features, vggish_weights=None, root=None):
    """(data dir, prepared dir) of the cached demo dataset."""
    root = pathlib.Path(root) if root is not None else cache_root()
    name = f"demo-{int(clips)}-{int(seed)}"
    return root / name, root / f"{name}-{_features_tag(features, vggish_weights)}"


def prepared_directory(data, fields, run_dir, vggish_weights=None, workers=None, progress=True,
                       max_seconds=params.MAX_CLIP_SECONDS, name="data", vocabulary_dirs=None):
    """The prepared TFRecord directory of the run's `data` option (module docstring), built when needed; clips
    longer than `max_seconds` are cut to it (`prepare`). Several datasets: {name: prepared directory}."""
    kind = data["kind"]
    if kind == "tfrecords":
        return pathlib.Path(data["path"])
    if kind == "data_dirs":
        return {name: prepared_directory({"kind": "data_dir", "path": path}, fields, pathlib.Path(run_dir) / "data",
                                         vggish_weights, workers, progress, max_seconds, name=name,
                                         vocabulary_dirs=data["paths"])
                for name, path in zip(dataset_names(data["paths"]), data["paths"])}
    features = prepare_features(fields)
    options = {"features": features, "workers": workers, "progress": progress, "max_seconds": max_seconds}
    if "vggish" in features:
        options["vggish_weights"] = vggish_weights or params.VGGISH_HUB_HANDLE
    if kind == "demo":
        data_dir, out_dir = demo_paths(data["clips"], data["seed"], features, vggish_weights)
        if max_seconds != params.MAX_CLIP_SECONDS:  # a cache of its own, not one cut otherwise
            out_dir = out_dir.with_name(f"{out_dir.name}-max{max_seconds:g}s")
        # The cache is shared by the runs (and the training workers) of this machine: one builds, the others wait.
        with exclusive_lock(data_dir):
            demo.make_demo_dataset(data_dir, data["clips"], seed=data["seed"], workers=workers, progress=progress)
        with exclusive_lock(out_dir):
            _prepare_once(data_dir, out_dir, options)
        return out_dir
    if kind == "data_dir":
        data_dir, out_dir = pathlib.Path(data["path"]), pathlib.Path(run_dir) / name
        if vocabulary_dirs:
            options["vocabulary_dirs"] = vocabulary_dirs
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    _prepare_once(data_dir, out_dir, options)
    return out_dir


def _prepare_once(data_dir, out_dir, options):
    """`prepare` of `data_dir` into `out_dir` unless a complete preparation is there."""
    manifest = out_dir / prepare.MANIFEST_FILE
    if not (manifest.is_file() and prepare.read_manifest(out_dir).get("complete")):
        prepare.prepare_dataset(data_dir, out_dir, **options)


def clip_table(source):
    """Every clip of `source` in its order: {"key": [...], "attributes": [[word, ...]], "captions": [[...]]}."""
    table = {"key": [], "attributes": [], "captions": []}
    for clip in source.clip_dataset([]):
        table["key"].append(clip["key"].numpy().decode())
        table["attributes"].append([w.decode() for w in clip["attributes"].numpy() if w])
        table["captions"].append([c.decode() for c in clip["captions"].numpy() if c])
    return table


class AttributeOverride:
    """A pipeline source whose clips' attribute words are replaced by `attributes[key]` (the 1NN variant).

    Everything else is the wrapped source's; `training_dataset` and `evaluation_dataset` take it as a source.
    """

    def __init__(self, source, attributes):
        self.source = source
        keys = list(attributes)
        lists = [list(attributes[key]) for key in keys]
        self._keys = tf.constant(keys, tf.string, shape=[len(keys)])
        flat = [word for words in lists for word in words]
        self._values = tf.RaggedTensor.from_row_lengths(
            tf.constant(flat, tf.string, shape=[len(flat)]), tf.constant([len(w) for w in lists], tf.int64))

    def __getattr__(self, name):
        return getattr(self.source, name)

    def __repr__(self):
        return f"AttributeOverride({self.source!r})"

    def clip_dataset(self, fields, shuffle=False, seed=None):
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self._keys, tf.range(tf.size(self._keys, tf.int64), dtype=tf.int64)),
            default_value=-1)
        values = self._values

        def replace(clip):
            row = table.lookup(clip["key"])
            tf.debugging.assert_non_negative(row, message="a clip without overriding attributes")
            return dict(clip, attributes=values[row])

        return self.source.clip_dataset(fields, shuffle=shuffle, seed=seed).map(replace)


def training_stream(source, fields, batch_size, epochs, seed=0, first_epoch=0, max_caption_length=None, mixup=0.0,
                    vocabulary=None):
    """Training batches of data epochs `first_epoch` .. `first_epoch + epochs - 1`, then the same again: data
    epoch e is `pipeline.training_dataset` shuffled with seed `seed + e`, its last batch possibly smaller, with
    `mixup` (a probability; `vocabulary` is the caption vocabulary, default the source's) as that takes it.

    Epoch e's order depends on nothing but (seed, e): not on how many iterators were made over the stream before
    (Keras makes one to build a distributed model and then starts afresh, which would otherwise move a reshuffling
    dataset on by an epoch for some strategies and not others), nor on the process; a run resumed at epoch e
    sees the batches an uninterrupted run would have seen.
    """
    stream = None
    for index in range(int(first_epoch), int(first_epoch) + max(1, int(epochs))):
        epoch = pipeline.training_dataset(source, fields, batch_size=batch_size, shuffle=True, seed=seed + index,
                                          max_caption_length=max_caption_length, mixup=mixup, vocabulary=vocabulary)
        stream = epoch if stream is None else stream.concatenate(epoch)
    return stream.repeat()
