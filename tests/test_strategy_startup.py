"""`--strategy multiworker` makes its strategy before TensorFlow starts its runtime: made after anything lists
devices or runs an op, it fails with "Collective ops must be configured at program startup"."""

import json
import os
import socket
import subprocess
import sys

from test_dev_server import PROCESS_TIMEOUT

SCRIPT = """
import audiocaps_tf.fit  # what `python -m audiocaps_tf.fit` imports before it makes the strategy
from audiocaps_tf.training.config import FitConfig
from audiocaps_tf.training.strategy import make_strategy
FitConfig(strategy="multiworker")  # the options are read (the model registry imported) first
strategy = make_strategy("multiworker")
print("replicas", strategy.num_replicas_in_sync)
"""


def test_the_multiworker_strategy_starts_after_fit_s_imports_and_options():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    finished = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
                              env={**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "replicas 1" in finished.stdout
