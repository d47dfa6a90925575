"""Requests and answers of the serving APIs as NumPy arrays, checked against a signature; failures as ServingError.

Shared by the gRPC and REST front ends of the development server (and by the client), so that both transports
accept and reject exactly the same requests, with the same messages:

- checks of a request's named inputs against a signature's TensorSpecs (names, dtype, shape, one batch size);
- TensorProto <-> NumPy (`tf.make_ndarray`, `tf.make_tensor_proto`);
- TF Serving's REST JSON <-> NumPy: row format (`instances`) and columnar format (`inputs`), `{"b64": ...}` for
  bytes; string outputs as UTF-8 JSON strings, or `{"b64": ...}` when the output name ends in `_bytes` or the
  bytes are not UTF-8, as TF Serving does;
- TensorFlow runtime errors (`tf.errors.OpError`) as ServingError with the human part of their message;
- status and metadata protos as TF Serving's REST API prints them.
"""

import base64
import binascii
import math
import re

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

INVALID_ARGUMENT = "INVALID_ARGUMENT"

# HTTP status of each canonical status code (the google.rpc.Code mapping, which TF Serving's REST API follows).
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 413,  # the server's limits (request size, --max-batch): the request is too large
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}
STATUS_CODES = frozenset(HTTP_STATUS)  # every canonical code but OK: the names of grpc.StatusCode and tf error codes

# Status code of an HTTP error status, for REST clients (413, which the REST server answers to a body over its
# size cap, is RESOURCE_EXHAUSTED as gRPC's own message size limit is).
_CODE_OF_HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ServingError(Exception):
    """A request that failed: `code` is a canonical status name, `message` the reason (also `str(error)`).

    The development server raises INVALID_ARGUMENT (a bad request), NOT_FOUND (no such model or version),
    RESOURCE_EXHAUSTED (a request over the size cap), UNIMPLEMENTED and INTERNAL, and passes the code of other
    TensorFlow runtime errors through, as TF Serving does. Clients also raise UNAVAILABLE (server unreachable)
    and DEADLINE_EXCEEDED (no answer in time).
    """

    def __init__(self, code, message):
        if code not in STATUS_CODES:
            raise ValueError(f"not a canonical status code: {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS[self.code]


def code_of_http_status(status):
    """The status code name a REST client reports for an HTTP error status."""
    if status in _CODE_OF_HTTP_STATUS:
        return _CODE_OF_HTTP_STATUS[status]
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL"


# --- TensorFlow runtime errors ------------------------------------------------------------------------------

_STACK_HEADER = re.compile(r"^Detected at node .* \(most recent call last\):$", re.M)
_NODE_CONTEXT = re.compile(r"\s*\[\[\{\{.*", re.S)  # "\n\t [[{{node Assert/Assert}}]] [Op:...]" up to the end
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*$")
_ASSERTION = re.compile(r"assertion failed: \[(.*)\]", re.S)


def clean_op_message(message):
    """The human part of a TensorFlow runtime error message.

    Drops the "Graph execution error" header with the stack under it, the node context ("[[{{node ...}}]]") and
    the op suffix ("[Op:...]"), and unwraps the data of a failed Assert:
    "assertion failed: [audio: not a RIFF/WAVE file]" -> "audio: not a RIFF/WAVE file".
    """
    text = message
    header = _STACK_HEADER.search(text)
    if header is not None:
        lines = text[header.end():].split("\n")
        while lines and (not lines[0].strip() or lines[0][0].isspace() or lines[0] == "<stack traces unavailable>"):
            lines.pop(0)  # stack frames are indented, separated by blank lines
        text = "\n".join(lines)
    text = _OP_SUFFIX.sub("", _NODE_CONTEXT.sub("", text)).strip()
    assertion = _ASSERTION.fullmatch(text)
    if assertion is not None:
        text = " ".join(assertion.group(1).split("] ["))  # Assert prints each data item in brackets
    return text or message.strip()


def from_op_error(error):
    """A `tf.errors.OpError` as a ServingError with its own code (InvalidArgumentError -> INVALID_ARGUMENT)."""
    try:
        code = error_codes_pb2.Code.Name(error.error_code)
    except ValueError:
        code = "UNKNOWN"
    return ServingError(code if code in STATUS_CODES else "UNKNOWN", clean_op_message(error.message))


# --- checks of inputs against a signature ---------------------------------------------------------------------


def _join(names):
    return ",".join(sorted(names))


def _describe_shape(shape):
    if shape.rank is None:
        return "of any shape"
    dims = ", ".join("?" if dim is None else str(dim) for dim in shape.as_list())
    return f"[{dims}] (rank {shape.rank})"


def dtype_of(array):
    """The TensorFlow dtype of a request array: object, bytes and str arrays are tf.string."""
    if array.dtype.kind in "OSU":
        return tf.string
    return tf.as_dtype(array.dtype)


def check_input_names(names, specs):
    """Rejects a request that does not name exactly the signature's inputs, with TF Serving's message."""
    sent, expected = set(names), set(specs)
    if sent != expected:
        raise ServingError(
            INVALID_ARGUMENT,
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{_join(sent)}}}) != len({{{_join(expected)}}}). "
            f"Sent extra: {{{_join(sent - expected)}}}. Missing but required: {{{_join(expected - sent)}}}.",
        )


def check_inputs(arrays, specs, max_batch=None):
    """Rejects (INVALID_ARGUMENT) NumPy inputs that do not fit the signature's TensorSpecs, before any TF runs.

    Checks the input names, each input's dtype and shape, and that the inputs whose first dimension is the
    signature's batch dimension (None) agree on it. Messages name the input. A batch of more than `max_batch`
    rows is RESOURCE_EXHAUSTED (REST 413).
    """
    check_input_names(arrays, specs)
    batch_sizes = {}
    for name in sorted(specs):
        spec, array = specs[name], arrays[name]
        try:
            dtype = dtype_of(array)
        except TypeError:
            raise ServingError(INVALID_ARGUMENT, f'input "{name}": unsupported dtype {array.dtype}') from None
        if dtype != spec.dtype:
            raise ServingError(
                INVALID_ARGUMENT, f'input "{name}": expects dtype {spec.dtype.name} but {dtype.name} was provided'
            )
        if not spec.shape.is_compatible_with(array.shape):
            raise ServingError(
                INVALID_ARGUMENT,
                f'input "{name}": expects shape {_describe_shape(spec.shape)} '
                f"but got shape {_describe_shape(tf.TensorShape(array.shape))}",
            )
        if spec.shape.rank and spec.shape[0] is None:
            batch_sizes[name] = array.shape[0]
    if len(set(batch_sizes.values())) > 1:
        sizes = ", ".join(f"{name}: {size}" for name, size in sorted(batch_sizes.items()))
        raise ServingError(INVALID_ARGUMENT, f"inputs must have the same batch size (dimension 0), got {sizes}")
    if max_batch is not None and batch_sizes and max(batch_sizes.values()) > max_batch:
        raise ServingError("RESOURCE_EXHAUSTED", f"{max(batch_sizes.values())} rows in one request, over the limit "
                                                 f"of {max_batch} (--max-batch)")


# --- TensorProto ----------------------------------------------------------------------------------------------


# The TensorProto value field of each dtype the server accepts (types.proto); others (resource, variant,
# complex, quantized) are refused.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val", types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val", types_pb2.DT_STRING: "string_val", types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val", types_pb2.DT_HALF: "half_val", types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_UINT32: "uint32_val", types_pb2.DT_UINT64: "uint64_val",
}


def check_tensor_proto(name, proto):
    """Refuses (INVALID_ARGUMENT) a TensorProto whose dtype is not a plain one, or whose declared shape does not
    hold exactly the values it carries, before any array is built: a tiny request must not expand into a huge
    array (a declared shape [1, 200000000] with no values), nor one WAV into 1,024 (shape [1024], one value)."""
    if proto.dtype not in _VALUE_FIELDS:
        dtype = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() else proto.dtype
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": unsupported dtype {dtype}')
    if proto.tensor_shape.unknown_rank:
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": the TensorProto has no shape (unknown rank)')
    dims = [dim.size for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in dims):
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": a negative dimension in the shape {dims}')
    elements = math.prod(dims)
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise ServingError(INVALID_ARGUMENT, f'input "{name}": strings must be sent in string_val')
        itemsize = tf.dtypes.as_dtype(proto.dtype).size
        sent, needed = len(proto.tensor_content), elements * itemsize
        if sent != needed:
            raise ServingError(INVALID_ARGUMENT, f'input "{name}": the shape {dims} needs {needed} bytes of '
                                                 f"tensor_content, {sent} were sent")
        return
    sent = len(getattr(proto, _VALUE_FIELDS[proto.dtype]))
    if sent != elements:
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": the shape {dims} holds {elements} values, '
                                             f"{sent} were sent")


def tensor_proto_to_array(name, proto):
    """A request's TensorProto as a NumPy array (strings as an object array of bytes), once `check_tensor_proto`
    accepts it."""
    check_tensor_proto(name, proto)
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError, KeyError) as error:
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": malformed TensorProto ({error})') from None


def array_to_tensor_proto(array):
    """A NumPy array (or anything `tf.make_tensor_proto` takes) as a TensorProto."""
    return tf.make_tensor_proto(array)


# --- REST JSON ------------------------------------------------------------------------------------------------


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _json_bytes(name, item):
    """One string element of a JSON input: a str (sent as UTF-8) or {"b64": ...} (sent as the decoded bytes)."""
    if isinstance(item, str):
        return item.encode("utf-8")
    if _is_b64(item):
        encoded = item["b64"]
        if not isinstance(encoded, str):
            raise ServingError(INVALID_ARGUMENT, f'input "{name}": the value of "b64" must be a string')
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding is optional
        except (binascii.Error, ValueError) as error:
            raise ServingError(INVALID_ARGUMENT, f'input "{name}": invalid base64 in "b64" ({error})') from None
    if isinstance(item, list):
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": the nested lists are ragged (not all the same length)')
    raise ServingError(
        INVALID_ARGUMENT, f'input "{name}": expects strings or {{"b64": ...}} objects, got {type(item).__name__}'
    )


def _json_to_strings(name, value):
    try:
        array = np.array(value, dtype=object)
        strings = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            strings[index] = _json_bytes(name, item)
    except (ValueError, RuntimeError) as error:  # ragged, or nested deeper than NumPy's 32 dimensions
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": not a tensor of strings ({error})') from None
    return strings


_KIND_NAMES = {"b": "booleans", "i": "integers", "u": "integers", "f": "non-integer numbers", "U": "strings"}


def json_to_array(name, value, dtype):
    """One input's JSON value (a scalar or nested lists of them) as a NumPy array of the signature's `dtype`."""
    if dtype == tf.string:
        return _json_to_strings(name, value)
    try:
        array = np.array(value)
    except ValueError as error:
        raise ServingError(
            INVALID_ARGUMENT, f'input "{name}": the nested lists are ragged (not all the same length) or nested '
                              f"deeper than 32 dimensions ({error})"
        ) from None
    if array.size == 0:
        return array.astype(dtype.as_numpy_dtype)
    accepted = "b" if dtype.is_bool else "iu" if dtype.is_integer else "iuf" if dtype.is_floating else ""
    if array.dtype.kind not in accepted:
        got = _KIND_NAMES.get(array.dtype.kind, "objects or mixed values")
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": expects {dtype.name} values, got {got}')
    if dtype.is_integer and (array.min() < dtype.min or array.max() > dtype.max):
        raise ServingError(INVALID_ARGUMENT, f'input "{name}": values out of the range of {dtype.name}')
    return array.astype(dtype.as_numpy_dtype)


def instances_to_arrays(instances, specs):
    """TF Serving's row format: a list of objects naming every input (bare values when the signature has one)."""
    if not isinstance(instances, list) or not instances:
        raise ServingError(INVALID_ARGUMENT, "'instances' must be a non-empty list")
    if isinstance(instances[0], dict) and not _is_b64(instances[0]):
        names = set(instances[0])
        for position, instance in enumerate(instances):
            if not isinstance(instance, dict) or _is_b64(instance) or set(instance) != names:
                message = f"instance {position} does not name the same inputs as instance 0 ({_join(names)})"
                raise ServingError(INVALID_ARGUMENT, message)
        check_input_names(names, specs)
        columns = {name: [instance[name] for instance in instances] for name in names}
    else:
        columns = {_only_input(specs, "each instance must be an object naming them"): instances}
    return {name: json_to_array(name, value, specs[name].dtype) for name, value in columns.items()}


def inputs_to_arrays(inputs, specs):
    """TF Serving's columnar format: an object naming every input (a bare value when the signature has one)."""
    if isinstance(inputs, dict) and not _is_b64(inputs):
        check_input_names(inputs, specs)
        columns = inputs
    else:
        columns = {_only_input(specs, "'inputs' must be an object naming them"): inputs}
    return {name: json_to_array(name, value, specs[name].dtype) for name, value in columns.items()}


def _only_input(specs, advice):
    if len(specs) != 1:
        raise ServingError(INVALID_ARGUMENT, f"the signature has {len(specs)} inputs ({_join(specs)}): {advice}")
    return next(iter(specs))


def _json_string(item, as_b64):
    if isinstance(item, str):
        return item
    if not as_b64:
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(item).decode("ascii")}


def _map_nested(value, function):
    if isinstance(value, list):
        return [_map_nested(item, function) for item in value]
    return function(value)


def _float32_decimal(value):
    """A float32 as TensorFlow prints it (TF Serving's REST answers): 6 significant digits when they give back the
    same float32, else 9, which always do."""
    short = f"{value:.6g}"
    return float(short if np.float32(short) == np.float32(value) else f"{value:.9g}")


def array_to_json(name, array):
    """An output array as JSON values: strings as UTF-8 text, or {"b64": ...} for `*_bytes` outputs and non-UTF-8;
    float32 values as TF Serving writes them."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        as_b64 = name.endswith("_bytes")
        return _map_nested(array.tolist(), lambda item: _json_string(item, as_b64))
    if array.dtype.kind == "f" and array.dtype.itemsize <= 4:
        return _map_nested(array.tolist(), _float32_decimal)
    return array.tolist()


def outputs_to_rows(outputs):
    """Row format answer ("predictions"): per batch row, a dict of the outputs, or the value when there is one."""
    batch_size = None
    for name, array in outputs.items():
        if np.ndim(array) == 0:
            raise ServingError(
                INVALID_ARGUMENT,
                f"output {name} is a scalar and has no rows: send the request in the columnar format ('inputs')",
            )
        if batch_size is None:
            batch_size = len(array)
        elif len(array) != batch_size:
            message = f"Tensor name: {name} has inconsistent batch size: {len(array)} expecting: {batch_size}"
            raise ServingError(INVALID_ARGUMENT, message)
    values = {name: array_to_json(name, array) for name, array in outputs.items()}
    if len(values) == 1:
        return next(iter(values.values()))
    return [{name: rows[position] for name, rows in values.items()} for position in range(batch_size or 0)]


def outputs_to_columns(outputs):
    """Columnar answer ("outputs"): a dict of the outputs, or the value when there is one."""
    values = {name: array_to_json(name, array) for name, array in outputs.items()}
    if len(values) == 1:
        return next(iter(values.values()))
    return values


# --- status and metadata as REST JSON -------------------------------------------------------------------------


def proto_to_json(message):
    """A proto as TF Serving's REST API prints it: proto field names, fields at their default values included."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def metadata_to_json(response):
    """A GetModelMetadataResponse as the REST metadata answer: the model spec and the unpacked SignatureDefMap."""
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    if "signature_def" in response.metadata:
        response.metadata["signature_def"].Unpack(signature_defs)
    return {
        "model_spec": proto_to_json(response.model_spec),
        "metadata": {"signature_def": proto_to_json(signature_defs)},
    }
