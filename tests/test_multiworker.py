"""`fit --strategy multiworker`: two worker processes on 127.0.0.1 train one model (`training/worker_loop.py`).

Each worker is `fit.main` in its own process with its own TF_CONFIG; both start together and share a fresh demo
cache (the first to arrive synthesises it, the other waits on the cache's lock). A one-worker run with the same
global batch is the reference.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_dev_server import PROCESS_TIMEOUT
from test_fit import LOSSES_CALLBACK, REPO, TINY_MODEL

BATCH = 4  # per worker: global batch 8, 4 steps per epoch on the 32 train captions of the 40-clip demo
WORKER_SCRIPT = textwrap.dedent("""
    import json, sys
    from audiocaps_tf import fit
""") + LOSSES_CALLBACK + textwrap.dedent("""
    strategy, batch_size, epochs, out, overrides = sys.argv[1:6]
    losses = Losses()
    status = fit.main(["--demo-clips", "40", "--workers", "1", "--epochs", epochs, "--model-overrides", overrides,
                       "--batch-size", batch_size, "--strategy", strategy, "--out", out, "--patience", "0"],
                      callbacks=[losses])
    print("RESULT", json.dumps({"status": status, "batch_losses": losses.losses}), flush=True)
    sys.exit(status)
""")
OVERRIDES = json.dumps({**TINY_MODEL, "dropout": 0.0})  # dropout masks would differ between the runs


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _start(strategy, batch_size, epochs, out, cache, tf_config=None):
    env = dict(os.environ, AUDIOCAPS_TF_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="3")
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, strategy, str(batch_size), str(epochs), str(out),
                             OVERRIDES], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=REPO)


def _start_cluster(out, cache, epochs):
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    return [_start("multiworker", BATCH, epochs, out, cache,
                   {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
            for index in range(2)]


def _result(process):
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, output[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_two_workers_train_like_one_worker_with_the_same_global_batch(cache, tmp_path):
    """Tolerance as for MirroredStrategy (test_fit): the first batch (no update yet) to 1e-5 relative, later
    batches to 1e-3 (Adam's first steps amplify float-rounding differences of the summed gradients)."""
    out = tmp_path / "run"
    chief, other = (_result(process) for process in _start_cluster(out, cache, epochs=2))
    # The default strategy: Keras' `fit` under any other one reads a batch to build the model, then starts a
    # new iterator, which the pipeline's shuffle orders anew.
    single = _result(_start("auto", 2 * BATCH, 2, tmp_path / "single", cache))
    assert len(chief["batch_losses"]) == len(single["batch_losses"]) == 8  # 2 epochs of 4 global batches
    np.testing.assert_allclose(chief["batch_losses"], other["batch_losses"], rtol=1e-6)  # one loss, all replicas
    np.testing.assert_allclose(chief["batch_losses"][0], single["batch_losses"][0], rtol=1e-5)
    np.testing.assert_allclose(chief["batch_losses"], single["batch_losses"], rtol=1e-3)

    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "complete" and (state["replicas"], state["global_batch"]) == (2, 2 * BATCH)
    assert [entry["period"] for entry in state["history"]] == [1, 2]
    for name in ("best.keras", "metrics.json", "test_predictions.csv", "tokenizer", "logs"):
        assert (out / name).exists(), name
    # The other worker keeps what resuming it needs (its options and state), nothing like a run's outputs.
    worker_dir = out / "workers" / "1"
    assert sorted(path.name for path in worker_dir.iterdir()) == ["config.json", "state.json"]
    assert not list(out.glob("workers/0"))


def test_a_killed_worker_makes_the_other_fail_with_a_clear_message(cache, tmp_path):
    # Every step is a collective of both workers: once one is gone, the other cannot finish these epochs.
    chief, other = _start_cluster(tmp_path / "run", cache, epochs=20)
    try:
        for line in other.stdout:  # training has started on both (a step needs every worker)
            if line.startswith("STEP 2"):
                break
        other.kill()
        other.wait(timeout=PROCESS_TIMEOUT)
        output, _ = chief.communicate(timeout=PROCESS_TIMEOUT)  # a hang fails here
    finally:
        for process in (chief, other):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert chief.returncode == 1, output[-4000:]
    assert "another worker of the cluster stopped responding" in output, output[-4000:]
    assert "--resume" in output


def test_replica_slices_cut_each_global_batch_in_replica_order():
    import tensorflow as tf
    from audiocaps_tf.training.worker_loop import replica_slices

    def each(x):
        return {"a": x}, x * 10

    batches = tf.data.Dataset.range(10).batch(4).map(each)  # rows 0-3, 4-7, 8-9
    got = []
    for pipeline in range(2):  # 2 workers with 2 replicas each
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                             num_replicas_in_sync=4)
        got.append([(inputs["a"].numpy().tolist(), targets.numpy().tolist())
                    for inputs, targets in replica_slices(batches, context)])
    assert got[0] == [([0], [0]), ([1], [10]), ([4], [40]), ([5], [50]), ([], []), ([8], [80])]
    assert got[1] == [([2], [20]), ([3], [30]), ([6], [60]), ([7], [70]), ([], []), ([9], [90])]
