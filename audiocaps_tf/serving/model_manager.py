"""Which SavedModel version the development server serves: TF Serving's "latest" version policy, for one model.

A background thread polls MODEL_BASE. Its versions are the integer-named directories holding `saved_model.pb`
(anything else, such as `.tmp-3`, `model.keras` or a directory still being written, is ignored). The newest is
loaded with `tf.saved_model.load`, its warm-up requests (`assets.extra/tf_serving_warmup_requests`) are replayed
as TF Serving does, and only then is it swapped in: requests keep hitting the previous version meanwhile, and the
previous one is dropped after the swap. A version that fails to load (or to warm up) is logged and left alone
until its directory changes; the previous version keeps serving. When the served version's directory is
deleted, the next newest is served. As in TF Serving, the model status keeps every version dealt with since the
start: unloaded and failed ones stay listed as END.
"""

import dataclasses
import logging
import os
import pathlib
import re
import threading

import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, prediction_log_pb2

from audiocaps_tf.serving.tensors import (
    INVALID_ARGUMENT,
    ServingError,
    check_inputs,
    from_op_error,
    tensor_proto_to_array,
)

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"
WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving refuses a version with more warm-up records than this
_VERSION_NAME = re.compile(r"[0-9]+")
_State = get_model_status_pb2.ModelVersionStatus.State


def find_versions(model_base):
    """{version: directory} of the integer-named directories under `model_base` that hold saved_model.pb."""
    versions = {}
    for entry in os.scandir(model_base):
        if _VERSION_NAME.fullmatch(entry.name) and entry.is_dir():
            if os.path.isfile(os.path.join(entry.path, SAVED_MODEL_FILE)):
                versions[int(entry.name)] = pathlib.Path(entry.path)
    return versions


def read_signature_def_map(version_dir):
    """The SignatureDefMap of a SavedModel directory, read from its saved_model.pb (first meta graph)."""
    saved_model = saved_model_pb2.SavedModel.FromString((pathlib.Path(version_dir) / SAVED_MODEL_FILE).read_bytes())
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        signature_defs.signature_def[name].CopyFrom(signature_def)
    return signature_defs


def _check_output_filter(output_filter, output_names):
    seen = set()
    for alias in output_filter:
        if alias not in output_names:
            raise ServingError(
                INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(output_names))}}}.",
            )
        if alias in seen:
            raise ServingError(INVALID_ARGUMENT, f"duplicate output tensor alias: {alias}")
        seen.add(alias)


class LoadedVersion:
    """One loaded version: its signatures (concrete functions) and their SignatureDefMap; safe to share by threads."""

    def __init__(self, model_name, version, path, saved_model, signature_def_map, max_batch=None):
        self.model_name = model_name
        self.max_batch = max_batch  # rows per request (None: any)
        self.version = version
        self.path = pathlib.Path(path)
        self.saved_model = saved_model  # what tf.saved_model.load returned
        self.signature_def_map = signature_def_map

    def signature(self, name):
        """The concrete function of signature `name` (INVALID_ARGUMENT when there is none)."""
        try:
            return self.saved_model.signatures[name]
        except KeyError:
            message = f'Serving signature name: "{name}" not found in signature def'
            raise ServingError(INVALID_ARGUMENT, message) from None

    def input_specs(self, name):
        """{input name: tf.TensorSpec} of signature `name`."""
        return dict(self.signature(name).structured_input_signature[1])

    def predict(self, signature_name, inputs, output_filter=()):
        """Runs a signature on NumPy `inputs` once they pass `check_inputs`; {output name: NumPy array}.

        `output_filter` (names of outputs) keeps only those outputs; empty keeps all. TensorFlow runtime errors,
        such as the graph's checks of the audio, become ServingError (InvalidArgumentError -> INVALID_ARGUMENT).
        """
        function = self.signature(signature_name)
        specs = function.structured_input_signature[1]
        check_inputs(inputs, specs, self.max_batch)
        output_names = list(function.structured_outputs)
        _check_output_filter(output_filter, output_names)
        tensors = {name: tf.constant(array, dtype=specs[name].dtype) for name, array in inputs.items()}
        try:
            results = function(**tensors)
        except tf.errors.OpError as error:
            raise from_op_error(error) from None
        return {name: results[name].numpy() for name in (output_filter or output_names)}

    def metadata_response(self):
        """The GetModelMetadataResponse of this version: the SignatureDefMap packed under "signature_def"."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model_name
        response.model_spec.version.value = self.version
        response.metadata["signature_def"].Pack(self.signature_def_map)
        return response


def replay_warmup(loaded):
    """Runs the version's warm-up Predict requests, as TF Serving does before serving it; returns how many ran.

    A request that fails fails the load, as in TF Serving, so a bad warm-up file shows up here first.
    """
    path = loaded.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(str(path), buffer_size=1 << 20):
        if count == MAX_WARMUP_RECORDS:
            raise ServingError(INVALID_ARGUMENT, f"{path}: more than {MAX_WARMUP_RECORDS} warm-up records")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        try:
            if kind != "predict_log":
                raise ServingError("UNIMPLEMENTED", f"{kind} records are not supported, only predict_log")
            request = log.predict_log.request
            inputs = {name: tensor_proto_to_array(name, proto) for name, proto in request.inputs.items()}
            loaded.predict(request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs, tuple(request.output_filter))
        except ServingError as error:
            raise ServingError(error.code, f"warm-up request {count} of {path} failed: {error.message}") from None
        count += 1
    return count


def _fingerprint(directory):
    """Names, sizes and modification times of every file under `directory`: changes when anything is rewritten."""
    entries = []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            entries.append((os.path.relpath(path, directory), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


@dataclasses.dataclass(frozen=True)
class VersionState:
    """What the manager knows of one version, as ModelService reports it."""

    version: int
    state: str  # a ModelVersionStatus.State name: "LOADING", "AVAILABLE" or "END"
    error_code: str = "OK"
    error_message: str = ""


class ModelManager:
    """Serves the newest loadable version under `model_base`, reloading as versions come and go.

    The polling thread starts at construction; `stop()` ends it. `on_change(version)` is called from that thread
    after every swap (with None when no version is left to serve).
    """

    def __init__(self, model_base, model_name, poll_seconds=1.0, on_change=None, max_batch=None):
        self.model_base = pathlib.Path(model_base)
        self.model_name = model_name
        self.max_batch = max_batch  # rows per request, for every version (None: any)
        self.poll_seconds = poll_seconds
        self._on_change = on_change
        self._condition = threading.Condition()
        self._current = None
        self._states = {}
        self._failed = {}  # version -> fingerprint of the directory that failed to load
        self._scan_error = None
        self._poll_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"model-manager-{model_name}", daemon=True)
        self._thread.start()

    # --- what requests see ---

    @property
    def served_version(self):
        """The version being served, or None."""
        current = self._current
        return None if current is None else current.version

    def get(self, version=None, model_name=None, version_label=None):
        """The LoadedVersion a request asks for: the served one, when it is that model and (if given) that version.

        Raises NOT_FOUND like TF Serving ("Servable not found for request: Specific(audiocaps, 7)") for another
        model name, a version that is not served, or nothing served yet; version labels are not supported.
        """
        name = self.model_name if model_name is None else model_name
        if version_label:
            raise ServingError(INVALID_ARGUMENT, f"Unrecognized servable version label: {version_label}")
        current = self._current
        if name != self.model_name or current is None or (version is not None and version != current.version):
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
        return current

    def version_states(self):
        """VersionStates, newest first, of every version dealt with since the start, as TF Serving lists them: the
        served version (AVAILABLE), one being loaded (LOADING), and END for those unloaded (error code OK) or that
        failed to load (with the error), even once their directory is gone."""
        with self._condition:
            return sorted(self._states.values(), key=lambda state: state.version, reverse=True)

    def status_response(self, model_name=None, version=None):
        """The GetModelStatusResponse for `model_name` (this model when None), of one version or all of them.

        Lists `version_states()`; NOT_FOUND for another model, or a version the manager has not dealt with.
        """
        name = self.model_name if model_name is None else model_name
        states = self.version_states() if name == self.model_name else []
        if not states:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        if version is not None:
            states = [state for state in states if state.version == version]
            if not states:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for state in states:
            entry = response.model_version_status.add(version=state.version, state=_State.Value(state.state))
            entry.status.error_code = error_codes_pb2.Code.Value(state.error_code)
            entry.status.error_message = state.error_message
        return response

    def wait_until_available(self, timeout=None, version=None):
        """Blocks until a version (or this `version`) is served; False when `timeout` seconds pass first."""
        with self._condition:
            return self._condition.wait_for(
                lambda: self._current is not None and version in (None, self._current.version), timeout
            )

    def stop(self):
        """Ends the polling thread (after a load in progress) and drops the served version."""
        self._stopping.set()
        self._thread.join()
        with self._condition:
            self._current = None
            self._condition.notify_all()

    # --- polling ---

    def _run(self):
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # the thread must outlive any surprise, as the server does
                logger.exception("polling %s failed", self.model_base)
            self._stopping.wait(self.poll_seconds)

    def poll_once(self):
        """Looks at MODEL_BASE once and serves its newest loadable version (what the polling thread repeats)."""
        with self._poll_lock:
            try:
                versions = find_versions(self.model_base)
            except OSError as error:
                if str(error) != self._scan_error:
                    logger.warning("cannot list the versions in %s: %s", self.model_base, error)
                self._scan_error = str(error)
                return  # keep serving what is loaded
            self._scan_error = None
            self._forget_missing(versions)
            current = self._current
            current_gone = current is not None and current.version not in versions
            floor = current.version if current is not None and not current_gone else -1
            for version in sorted(versions, reverse=True):
                if version <= floor or self._stopping.is_set():
                    break
                fingerprint = _fingerprint(versions[version])
                if self._failed.get(version) == fingerprint:
                    continue  # failed before, unchanged since
                loaded = self._load(version, versions[version], fingerprint)
                if self._stopping.is_set():
                    return  # stopped while loading: serve nothing new
                if loaded is not None:
                    self._swap(loaded)
                    return
            if current_gone:
                self._swap(None)

    def _forget_missing(self, versions):
        """Forgets the failures of versions whose directory is gone: one that comes back is tried afresh."""
        for version in [version for version in self._failed if version not in versions]:
            del self._failed[version]

    def _set_state(self, state):
        with self._condition:
            self._states[state.version] = state

    def _load(self, version, path, fingerprint):
        """The LoadedVersion of `path`, warmed up; None (logged, state END with the error) when it fails."""
        self._set_state(VersionState(version, "LOADING"))
        logger.info("loading %s version %d from %s", self.model_name, version, path)
        try:
            loaded = LoadedVersion(
                self.model_name, version, path, tf.saved_model.load(str(path)), read_signature_def_map(path),
                max_batch=self.max_batch,
            )
            warmed = replay_warmup(loaded)
        except Exception as error:
            if isinstance(error, tf.errors.OpError):
                error = from_op_error(error)
            code = error.code if isinstance(error, ServingError) else "UNKNOWN"
            message = error.message if isinstance(error, ServingError) else f"{type(error).__name__}: {error}"
            logger.error(
                "%s version %d failed to load from %s (not retried until its directory changes): %s",
                self.model_name, version, path, message,
            )
            self._failed[version] = fingerprint
            self._set_state(VersionState(version, "END", code, message))
            return None
        logger.info("loaded %s version %d (%d warm-up requests replayed)", self.model_name, version, warmed)
        return loaded

    def _swap(self, new):
        with self._condition:
            old, self._current = self._current, new
            if old is not None:
                self._states[old.version] = VersionState(old.version, "END")  # unloaded, still listed
            if new is not None:
                self._states[new.version] = VersionState(new.version, "AVAILABLE")
            self._condition.notify_all()
        if new is None:
            logger.warning("%s: no version left under %s, serving nothing", self.model_name, self.model_base)
        else:
            logger.info("serving %s version %d", self.model_name, new.version)
        if self._on_change is not None:
            self._on_change(None if new is None else new.version)
