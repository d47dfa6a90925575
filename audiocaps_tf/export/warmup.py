"""TF Serving warm-up requests (`assets.extra/tf_serving_warmup_requests`), with the Keras model's captions.

TF Serving replays these requests when it loads a version, so the first real request does not pay for kernel
set-up. They are demo clips synthesised on the spot (no download, no user data), 16 kHz WAV files so that the
exported graph sees exactly the waveforms `load_audio` gives the Keras model. Each record also holds, as its
response, the captions of the Keras model's `generate` on the same clips: `check_warmup` replays the records
on the SavedModel and compares, which is how an export proves it captions as the model it came from.
"""

import io

import numpy as np
import soundfile
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio.loading import load_audio
from audiocaps_tf.export.serving_graph import DEFAULT_SIGNATURE, WAVEFORM_SIGNATURE

WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_SEED = 2019  # the demo clips of the warm-up requests
MAX_WARMUP_RECORDS = 1000  # TF Serving reads at most this many


def _wav_bytes(waveform, channels=1):
    """16-bit PCM WAV bytes of a 16 kHz waveform, duplicated to `channels` channels."""
    data = np.repeat(waveform[:, np.newaxis], channels, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, data, params.SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def warmup_inputs():
    """[(signature name, {input name: NumPy array}, [16 kHz clips the Keras model gets])]: a WAV batch of 1, a
    WAV batch of 2 (stereo 4 s, padded; mono 12 s, cut) and a waveform batch of 1."""
    from audiocaps_tf.data import demo  # the demo generator is only needed here

    clips = [demo.render(spec) for spec in demo.clip_specs(3, seed=WARMUP_SEED)]
    rate = params.SAMPLE_RATE
    long_clip = np.concatenate([clips[2], clips[0][: 2 * rate]])
    wav_one = [_wav_bytes(clips[0])]
    wav_two = [_wav_bytes(clips[1][: 4 * rate], channels=2), _wav_bytes(long_clip)]
    requests = [
        (DEFAULT_SIGNATURE, {"audio": np.array(wav_one, dtype=object)}, [load_audio(b) for b in wav_one]),
        (DEFAULT_SIGNATURE, {"audio": np.array(wav_two, dtype=object)}, [load_audio(b) for b in wav_two]),
        (
            WAVEFORM_SIGNATURE,
            {"waveform": clips[1][np.newaxis], "sample_rate": np.array([rate], np.int32)},
            [clips[1]],
        ),
    ]
    return requests


def warmup_logs(model, beam_size=1, max_length=None, model_name="audiocaps", no_repeat_ngram_size=0):
    """PredictionLog protos of the warm-up requests, each with the Keras model's captions as its response."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for signature, inputs, clips in warmup_inputs():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = predict_pb2.PredictResponse()
        captions = model.generate(clips, beam_size=beam_size, max_length=max_length,
                                  no_repeat_ngram_size=no_repeat_ngram_size)
        response.outputs["caption"].CopyFrom(tf.make_tensor_proto(np.array(captions, dtype=object)))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
            request=request, response=response)))
    return logs


def write_warmup(path, logs):
    """Writes the PredictionLog records as the TFRecord file TF Serving expects."""
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving reads at most {MAX_WARMUP_RECORDS} warm-up records; got {len(logs)}")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup(path):
    """The PredictionLog records of a warm-up file."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def check_warmup(saved_model, logs):
    """Replays the warm-up requests on a loaded SavedModel; returns the differences from the recorded Keras
    captions as readable lines (empty: all equal)."""
    problems = []
    for number, log in enumerate(logs, 1):
        request = log.predict_log.request
        signature = saved_model.signatures[request.model_spec.signature_name]
        inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
        got = [c.decode("utf-8") for c in signature(**inputs)["caption"].numpy()]
        want = [c.decode("utf-8") for c in tf.make_ndarray(log.predict_log.response.outputs["caption"]).tolist()]
        for clip, (g, w) in enumerate(zip(got, want)):
            if g != w:
                problems.append(f"warm-up request {number} ({request.model_spec.signature_name}), clip {clip + 1}: "
                                f"SavedModel {g!r}, Keras {w!r}")
        if len(got) != len(want):
            problems.append(f"warm-up request {number}: {len(got)} captions for {len(want)} clips")
    return problems
