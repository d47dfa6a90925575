"""`AudioPreprocessor`: the audio converter of every captioner, 16 kHz waveforms -> the features a model reads.

    mfcc                              `MFCCFrontend` (the paper's section 5.1)
    vggish_fc2 / _conv4 / _conv3      `LogMelFrontend` + `VGGish(outputs=<only those needed>)`
    log_mel                           `LogMelFrontend`'s examples [B, E, 96, 64] as one sequence of frames
                                      [B, E * 96, 64] (10 ms hop; the samples after the last whole 0.96 s
                                      example are dropped, as for VGGish, so both cover the same audio)

Every field is zero past the end of each clip (one past its last non-zero sample: a batch is zero-padded to its
longest clip), which the encoders' time masks leave out, so a clip's features, logits and caption are the same
alone and batched with longer clips. Sizes and names come from `audiocaps_tf.features`. Cached features (prepared TFRecords) skip it: `features(inputs)`
returns the fields as given when `inputs` holds them all. VGGish is frozen unless `vggish_trainable`; load its
weights with `load_vggish_weights(preprocessor.vggish, source)`. `prepare`, `fit`, the 1NN baselines and export
all compute features through it, so training features and served features come from one definition.
"""

import keras

from audiocaps_tf import params
from audiocaps_tf.features import feature, vggish_outputs
from audiocaps_tf.layers.log_mel_frontend import LogMelFrontend, log_mel_example_counts
from audiocaps_tf.layers.masking import masked_mean, signal_lengths, step_mask, time_mask
from audiocaps_tf.layers.mfcc_frontend import MFCCFrontend
from audiocaps_tf.layers.vggish import VGGish

__all__ = ["AudioPreprocessor", "log_mel_frames"]


def log_mel_frames(examples):
    """VGGish log-mel examples [B, E, 96, 64] -> their frames in order [B, E * 96, 64]: the examples do not overlap
    (hop 96 frames), so this is the log-mel spectrogram itself, 10 ms per frame."""
    batch, count, frames, bands = keras.ops.shape(examples)
    return keras.ops.reshape(examples, (batch, count * frames, bands))  # no -1: a batch may be empty


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class AudioPreprocessor(keras.layers.Layer):
    """waveform float32 [B, N] (16 kHz) -> {record field: float32 [B, T, C]} for the record `fields`."""

    def __init__(self, fields, vggish_trainable=False, **kwargs):
        super().__init__(**kwargs)
        fields = tuple(fields)
        kinds = [feature(field).frontend for field in fields]
        if not fields or None in kinds:
            raise ValueError(f"AudioPreprocessor computes mfcc, log_mel and vggish_* fields; got {list(fields)}")
        object.__setattr__(self, "fields", fields)  # a plain tuple, untracked
        self.vggish_trainable = bool(vggish_trainable)
        self.mfcc_frontend = self.log_mel = self.vggish = None
        if "mfcc" in kinds:
            self.mfcc_frontend = MFCCFrontend(name="mfcc_frontend", dtype=self.dtype_policy)
        if "vggish" in kinds or "log_mel" in kinds:  # one log-mel for both
            self.log_mel = LogMelFrontend(name="log_mel", dtype=self.dtype_policy)
        if "vggish" in kinds:
            self.vggish = VGGish(outputs=vggish_outputs(fields), trainable=self.vggish_trainable, name="vggish",
                                 dtype=self.dtype_policy)

    def build(self, input_shape=None):
        shapes = {"log_mel": (None, None), "vggish": (None, None, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS),
                  "mfcc_frontend": (None, None)}
        for name, shape in shapes.items():
            layer = getattr(self, name)
            if layer is not None and not layer.built:  # VGGish may be built already, by loading its weights
                layer.build(shape)
        self.built = True

    def get_build_config(self):
        return None  # built in full by `build`, whatever it is given

    def call(self, waveform):
        outputs = {}
        if self.mfcc_frontend is not None:
            outputs["mfcc"] = self.mfcc_frontend(waveform)
        if self.log_mel is not None:
            examples = self.log_mel(waveform)
            if "log_mel" in self.fields:
                outputs["log_mel"] = log_mel_frames(examples)
            if self.vggish is not None:  # the frontend's zero examples past a clip's end give non-zero embeddings
                computed = self.vggish(examples)
                counts = log_mel_example_counts(signal_lengths(waveform))
                valid = keras.ops.expand_dims(step_mask(counts, keras.ops.shape(examples)[1]), -1)
                outputs.update({f: keras.ops.where(valid, computed[feature(f).vggish_output], 0)
                                for f in self.fields if feature(f).vggish_output})
        return outputs

    def features(self, inputs):
        """{field: [B, T, C]}: the cached fields when `inputs` holds all of them, else computed from "waveform"."""
        if all(field in inputs for field in self.fields):
            return {field: inputs[field] for field in self.fields}
        if "waveform" not in inputs:
            raise ValueError(f"needs the fields {list(self.fields)} or 'waveform'; the inputs hold {sorted(inputs)}")
        return self(inputs["waveform"])

    def model_inputs(self, inputs):
        """The cached fields when `inputs` holds them all, else "waveform"."""
        keep = list(self.fields) if all(field in inputs for field in self.fields) else ["waveform"]
        return {key: inputs[key] for key in keep if key in inputs}

    def pooled(self, inputs, field=None):
        """Time-mean-pooled float32 features [B, C] of `field` (default: the first), over the non-padded steps:
        the query of the 1NN searches."""
        features = self.features(inputs)[field or self.fields[0]]
        return masked_mean(features, time_mask(features))

    def get_config(self):
        return {**super().get_config(), "fields": list(self.fields), "vggish_trainable": self.vggish_trainable}
