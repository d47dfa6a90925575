"""TF Serving's gRPC API for the development server, on the official `tensorflow-serving-api` stubs.

PredictionService: `Predict` (model_spec name / version / signature_name, default signature "serving_default",
`output_filter`; the answer's model_spec carries the version served) and `GetModelMetadata` (metadata_field
["signature_def"]; the answer's metadata["signature_def"] is the Any-packed SignatureDefMap). ModelService:
`GetModelStatus`. Other RPCs answer UNIMPLEMENTED. A ServingError answers its own status code; any other
exception is logged and answers INTERNAL, and the server keeps serving.
"""

import functools
import logging

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from audiocaps_tf.serving.model_manager import DEFAULT_SIGNATURE
from audiocaps_tf.serving.tensors import INVALID_ARGUMENT, ServingError, array_to_tensor_proto, tensor_proto_to_array

logger = logging.getLogger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"


def _rpc(method):
    """Turns a ServingError into its gRPC status and anything unexpected into INTERNAL (logged)."""

    @functools.wraps(method)
    def handle(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            status, message = grpc.StatusCode[error.code], error.message
        except Exception as error:
            logger.exception("%s failed", method.__name__)
            status, message = grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}"
        context.abort(status, message)

    return handle


def _unimplemented(name, advice):
    def reject(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not supported by the development server: {advice}")

    reject.__name__ = name
    return reject


def _requested_version(model_spec):
    return model_spec.version.value if model_spec.HasField("version") else None


def _served(manager, model_spec):
    """The LoadedVersion a request's ModelSpec names (the newest when it names no version)."""
    return manager.get(_requested_version(model_spec), model_spec.name, model_spec.version_label or None)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService over a ModelManager."""

    def __init__(self, manager):
        self._manager = manager

    @_rpc
    def Predict(self, request, context):
        served = _served(self._manager, request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        inputs = {name: tensor_proto_to_array(name, proto) for name, proto in request.inputs.items()}
        outputs = served.predict(signature, inputs, tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = served.model_name
        response.model_spec.version.value = served.version
        response.model_spec.signature_name = signature
        for name, array in outputs.items():
            response.outputs[name].CopyFrom(array_to_tensor_proto(array))
        return response

    @_rpc
    def GetModelMetadata(self, request, context):
        if not request.metadata_field:
            raise ServingError(INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServingError(INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        return _served(self._manager, request.model_spec).metadata_response()

    Classify = _unimplemented("Classify", "use Predict")
    Regress = _unimplemented("Regress", "use Predict")
    MultiInference = _unimplemented("MultiInference", "use Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService (status only) over a ModelManager."""

    def __init__(self, manager):
        self._manager = manager

    @_rpc
    def GetModelStatus(self, request, context):
        return self._manager.status_response(request.model_spec.name, _requested_version(request.model_spec))

    HandleReloadConfigRequest = _unimplemented(
        "HandleReloadConfigRequest", "it serves the one model of --model-base and has no model config to reload"
    )


def add_services(server, manager):
    """Registers PredictionService and ModelService, answering from `manager`, on a grpc.Server."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
