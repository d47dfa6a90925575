"""`python -m audiocaps_tf.serving.dev_server --model-base MODEL_BASE`: TF Serving's gRPC and REST APIs in Python.

    python -m audiocaps_tf.serving.dev_server --model-base exports/audiocaps
    python -m audiocaps_tf.serving.client clip.wav                     # gRPC on 127.0.0.1:8500
    curl -d '{"instances": [{"b64": "'"$(base64 -w0 clip.wav)"'"}]}' http://127.0.0.1:8501/v1/models/audiocaps:predict

The development and test stand-in for TensorFlow Serving, and the option for machines without Docker.
TensorFlow Serving (the `tensorflow/serving` Docker image; configuration in serving/) is the production server.
This one answers the same requests with the same status codes and messages: gRPC PredictionService (Predict,
GetModelMetadata) and ModelService (GetModelStatus), REST :predict, status and /metadata. Like TF Serving with
its default version policy it serves the newest version under MODEL_BASE/<version>/ (a directory holding
saved_model.pb), replays its warm-up requests before serving it, picks up new versions while running, and keeps
the previous version when a new one fails to load.

It binds 127.0.0.1 by default; another --host (such as 0.0.0.0) exposes it to the network, with no
authentication or TLS (a warning is logged). On start it prints `gRPC: HOST:PORT` and `REST: http://HOST:PORT`
(port 0 picks a free port), then `serving NAME version N` once a version is loaded and again at each change; it
stops cleanly (exit 0) on SIGINT or SIGTERM. A MODEL_BASE that does not exist is an error (exit 2); one that
holds no version yet is waited on.
"""

import argparse
import concurrent.futures
import ipaddress
import logging
import pathlib
import signal
import sys
import threading

import grpc

from audiocaps_tf.arguments import port_number, positive_float, positive_int
from audiocaps_tf.serving import grpc_service
from audiocaps_tf.serving.model_manager import ModelManager, find_versions
from audiocaps_tf.serving.rest_service import DEFAULT_MAX_CONNECTIONS, RestServer

logger = logging.getLogger(__name__)

MiB = 1 << 20
DEFAULT_MAX_REQUEST_BYTES = 64 * MiB
DEFAULT_MAX_BATCH = 64  # rows (clips, files) per Predict request
GRPC_WORKERS = 16


def host_port(host, port):
    """HOST:PORT, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host):
    """Whether `host` only accepts connections from this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class DevServer:
    """The gRPC and REST servers over one ModelManager; `start()`, `stop()`, or use it as a context manager.

    Port 0 picks a free port; after `start()`, `grpc_port` and `rest_port` hold the real ports.
    `on_version_change(version)` is called (from the polling thread) whenever the served version changes.
    """

    def __init__(self, model_base, model_name="audiocaps", host="127.0.0.1", grpc_port=8500, rest_port=8501,
                 max_request_bytes=DEFAULT_MAX_REQUEST_BYTES, poll_seconds=1.0, on_version_change=None,
                 max_batch=DEFAULT_MAX_BATCH, rest_max_connections=DEFAULT_MAX_CONNECTIONS):
        self.model_base = pathlib.Path(model_base)
        self.model_name = model_name
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.max_request_bytes = max_request_bytes
        self.max_batch = max_batch
        self.rest_max_connections = rest_max_connections
        self.poll_seconds = poll_seconds
        self.on_version_change = on_version_change
        self.manager = None
        self._grpc = None
        self._rest = None
        self._rest_thread = None

    def start(self):
        """Binds both ports and starts serving (and loading the newest version); raises OSError when a bind fails."""
        if self.manager is not None:
            raise RuntimeError("the server is already started")
        self.manager = ModelManager(self.model_base, self.model_name, self.poll_seconds, self._version_changed,
                                    max_batch=self.max_batch)
        try:
            self._rest = RestServer((self.host, self.rest_port), self.manager, self.max_request_bytes,
                                    self.rest_max_connections)
            self.rest_port = self._rest.server_address[1]
            self._grpc = grpc.server(
                concurrent.futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="grpc"),
                options=[
                    ("grpc.max_receive_message_length", self.max_request_bytes),
                    ("grpc.so_reuseport", 0),  # a port in use must fail, not be shared
                ],
            )
            grpc_service.add_services(self._grpc, self.manager)
            address = host_port(self.host, self.grpc_port)
            try:
                port = self._grpc.add_insecure_port(address)
            except RuntimeError as error:
                raise OSError(f"cannot listen for gRPC on {address}: {error}") from None
            if not port:
                raise OSError(f"cannot listen for gRPC on {address}")
            self.grpc_port = port
            self._grpc.start()
            self._rest_thread = threading.Thread(target=self._rest.serve_forever, name="rest", daemon=True)
            self._rest_thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stops accepting requests, lets those in flight finish (1 s for gRPC), and stops the model manager."""
        if self._rest is not None:
            if self._rest_thread is not None:
                self._rest.shutdown()
            self._rest.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=1.0).wait()
        if self.manager is not None:
            self.manager.stop()
        self._grpc = self._rest = self._rest_thread = None

    def wait_until_available(self, timeout=None, version=None):
        """Blocks until a version (or this `version`) is served; False when `timeout` seconds pass first."""
        return self.manager.wait_until_available(timeout, version)

    def _version_changed(self, version):
        if self.on_version_change is not None:
            self.on_version_change(version)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.serving.dev_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base", required=True, type=pathlib.Path, metavar="MODEL_BASE",
                        help="directory of version directories MODEL_BASE/<version>/saved_model.pb")
    parser.add_argument("--model-name", default="audiocaps", help="model name in requests (default audiocaps)")
    parser.add_argument("--grpc-port", type=port_number, default=8500, help="gRPC port (default 8500; 0: any free port)")
    parser.add_argument("--rest-port", type=port_number, default=8501, help="REST port (default 8501; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--max-request-mb", type=positive_float, default=64, metavar="MB",
                        help="largest request accepted, in MiB (default 64)")
    parser.add_argument("--max-batch", type=positive_int, default=DEFAULT_MAX_BATCH, metavar="N",
                        help=f"most rows (clips) in one Predict request; more: RESOURCE_EXHAUSTED, REST 413 "
                             f"(default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--rest-max-connections", type=positive_int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                        help=f"REST connections served at once; more are answered 503 (default "
                             f"{DEFAULT_MAX_CONNECTIONS})")
    parser.add_argument("--poll-seconds", type=positive_float, default=1.0, metavar="S",
                        help="how often MODEL_BASE is checked for new versions (default 1)")
    return parser


def main(argv=None):
    """The command line: serves until SIGINT or SIGTERM; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model_base.is_dir():
        parser.error(f"--model-base {args.model_base}: no such directory")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not is_loopback(args.host):
        logger.warning("binding %s: anyone who can reach this machine can use the server (no authentication, "
                       "no TLS); TensorFlow Serving is the production server", args.host)

    ports_printed = threading.Event()

    def announce(version):
        ports_printed.wait()
        if version is None:
            print(f"serving nothing: no version of {args.model_name} left under {args.model_base}", flush=True)
        else:
            print(f"serving {args.model_name} version {version}", flush=True)

    server = DevServer(args.model_base, args.model_name, args.host, args.grpc_port, args.rest_port,
                       int(args.max_request_mb * MiB), args.poll_seconds, on_version_change=announce,
                       max_batch=args.max_batch, rest_max_connections=args.rest_max_connections)
    try:
        server.start()
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handlers[signum] = signal.signal(signum, lambda *_: stopping.set())
    try:
        print(f"gRPC: {host_port(args.host, server.grpc_port)}", flush=True)
        print(f"REST: http://{host_port(args.host, server.rest_port)}", flush=True)
        ports_printed.set()
        if not find_versions(args.model_base):
            logger.warning("%s holds no version yet: waiting for %s/<version>/saved_model.pb",
                           args.model_base, args.model_base)
        stopping.wait()
        logger.info("stopping")
    finally:
        ports_printed.set()
        server.stop()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
