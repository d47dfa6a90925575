"""`--strategy`: where training runs, as a `tf.distribute.Strategy`.

    auto         every visible GPU with MirroredStrategy when there are two or more, else the one device
                 (the first GPU, or the CPU) with the default strategy
    one-device   OneDeviceStrategy on the first GPU, else /cpu:0
    mirrored     MirroredStrategy over every GPU (all-reduce); without GPUs, over every logical CPU device
                 (`tf.config.set_logical_device_configuration` splits the CPU into several: how the tests run it)
    multiworker  MultiWorkerMirroredStrategy: every worker runs the same command with its own TF_CONFIG, e.g.
                 TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                             "task": {"type": "worker", "index": 0}}'
                 Worker 0 (or the "chief" task) is the chief: it writes the run directory; the others keep
                 only their options, state and backup in RUN_DIR/workers/<index>/ (see `is_chief`). The
                 strategy is made before TensorFlow runs anything (collectives are configured at startup),
                 and trains with `training/worker_loop.py` (Keras 3's `Model.fit` cannot run under it).

Keras 3 builds and compiles the model inside `strategy.scope()`; `--batch-size` is per replica and the global
batch is `batch_size * strategy.num_replicas_in_sync` (the learning rate is not scaled).
"""

import json
import os

import tensorflow as tf

__all__ = ["STRATEGIES", "StrategyError", "make_strategy", "is_chief", "worker_index", "describe"]

STRATEGIES = ("auto", "mirrored", "multiworker", "one-device")


class StrategyError(RuntimeError):
    """The strategy asked for cannot run here (e.g. multiworker without TF_CONFIG)."""


def _names(device_type):
    return [device.name for device in tf.config.list_logical_devices(device_type)]


def make_strategy(name="auto"):
    """The `tf.distribute.Strategy` for a `--strategy` name (see the module docstring).

    Multi-worker collectives must be configured before TensorFlow starts its runtime: that strategy is made before
    anything here (or in `fit` before it) lists devices or runs an op."""
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise StrategyError("--strategy multiworker reads the cluster from the TF_CONFIG environment variable, "
                                "which is not set (see `python -m audiocaps_tf.fit --help`)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus, cpus = _names("GPU"), _names("CPU")
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy(gpus)
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else cpus[0])
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy(gpus)
        # NCCL is for GPUs; CPU replicas reduce through one device.
        return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    raise StrategyError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


def _task():
    try:
        task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    except ValueError:
        task = {}
    return task.get("type"), int(task.get("index", 0) or 0)


def is_chief(strategy):
    """Whether this process writes the run's outputs: always, except on multi-worker non-chief tasks."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, index = _task()
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster") or {}
    if "chief" in cluster:
        return task_type == "chief"
    return task_type in (None, "worker") and index == 0


def worker_index():
    """This worker's index in TF_CONFIG (0 when there is none)."""
    return _task()[1]


def describe(strategy):
    """A short description for messages: strategy class, replicas and devices."""
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "default strategy (one device)"
    try:
        devices = tuple(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError):
        devices = ()
    return (f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)"
            + (f" on {', '.join(devices)}" if devices else ""))

