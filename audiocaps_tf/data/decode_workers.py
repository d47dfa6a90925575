"""Decoding clips in worker processes (bounded, ordered) and computing their features in this one, for `prepare`."""

import collections
import os

import numpy as np

from audiocaps_tf.audio.loading import AudioError, load_clip
from audiocaps_tf.data import prepared

__all__ = ["FeatureExtractor", "decoded", "default_workers", "worker_setup_code"]

# Run first in each spawned decode worker (through the builtin `exec`, so nothing of the package is imported to
# run it): registers `audiocaps_tf` and `audiocaps_tf.audio` as bare packages, so unpickling `load_audio` imports
# only audio/loading.py and params.py, not the package __init__ files that import Keras and TensorFlow
# (~7 s and ~400 MB per worker). The workers only decode audio with NumPy, SciPy and soundfile.
#
# It also starts a watchdog thread: a worker whose parent is killed (SIGKILL, OOM) would otherwise wait forever
# on the task queue, whose write end it holds itself; the watchdog ends it once it has been orphaned.
_WORKER_SETUP = """
import os, sys, threading, time, types
for _name, _path in {packages!r}:
    if _name not in sys.modules:
        _module = types.ModuleType(_name)
        _module.__path__ = [_path]
        sys.modules[_name] = _module

def _exit_when_orphaned(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)

threading.Thread(target=_exit_when_orphaned, name="exit-when-orphaned", daemon=True).start()
"""


def worker_setup_code():
    import audiocaps_tf.audio

    packages = [(m.__name__, os.path.dirname(m.__file__)) for m in (audiocaps_tf, audiocaps_tf.audio)]
    return _WORKER_SETUP.format(packages=packages)


def default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def decoded(items, pool, window, sample_rate, max_seconds):
    """Yields (item, (waveform, seconds) or None, reason) for each `item` = (shard, clip, path), in order: the
    clip's audio cut to `max_seconds` (None: whole) and its length in seconds before the cut (`load_clip`).

    With a pool (a ProcessPoolExecutor: a worker that dies raises BrokenProcessPool rather than hanging the
    run), up to `window` clips are decoding ahead of the consumer (ordered, bounded: memory stays at
    `window` waveforms however slow the feature extraction is). A path of None (no audio file) decodes nothing.
    """
    options = {"sample_rate": sample_rate, "max_seconds": max_seconds}

    def outcome(get):
        try:
            return get(), None
        except AudioError as err:
            return None, str(err)

    if pool is None:
        for item in items:
            path = item[2]
            if path is None:
                yield item, None, None
            else:
                yield (item, *outcome(lambda: load_clip(path, **options)))
        return
    pending = collections.deque()
    for item in items:
        task = None if item[2] is None else pool.submit(load_clip, str(item[2]), **options)
        pending.append((item, task))
        if len(pending) >= window:
            head, task = pending.popleft()
            yield (head, None, None) if task is None else (head, *outcome(task.result))
    while pending:
        head, task = pending.popleft()
        yield (head, None, None) if task is None else (head, *outcome(task.result))


class FeatureExtractor:
    """Batched TF features of int16-quantised waveforms of any lengths: one {record field: float32 array} per clip,
    each cut to the clip's own steps (`prepared.feature_shapes`)."""

    def __init__(self, features, vggish_weights):
        import tensorflow as tf

        from audiocaps_tf.layers import load_vggish_weights
        from audiocaps_tf.models.preprocessor import AudioPreprocessor

        self.features = features
        fields = [field for field in prepared.record_fields(features) if field != "waveform"]
        self.preprocessor = AudioPreprocessor(fields) if fields else None
        if self.preprocessor is not None and self.preprocessor.vggish is not None:
            load_vggish_weights(self.preprocessor.vggish, vggish_weights)
        if self.preprocessor is not None:
            self._compute = tf.function(self.preprocessor, input_signature=[tf.TensorSpec([None, None], tf.float32)])

    def __call__(self, waveforms):
        """waveforms: 1-D float32 arrays -> one dict per waveform (empty without computed features)."""
        if self.preprocessor is None:
            return [{} for _ in waveforms]
        batch = np.zeros((len(waveforms), max(w.size for w in waveforms)), np.float32)
        for row, waveform in enumerate(waveforms):
            batch[row, : waveform.size] = waveform
        computed = {name: np.asarray(value, np.float32) for name, value in self._compute(batch).items()}
        results = []
        for row, waveform in enumerate(waveforms):
            shapes = prepared.feature_shapes(self.features, waveform.size)
            results.append({name: value[row, : shapes[name][0]] for name, value in computed.items()})
        return results
