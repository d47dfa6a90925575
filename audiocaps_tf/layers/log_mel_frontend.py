"""The VGGish log-mel frontend as a Keras layer."""

import keras
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.layers.masking import signal_lengths, step_mask

__all__ = ["LogMelFrontend", "num_log_mel_examples", "log_mel_example_counts"]


def _examples_of(samples):
    frames = 1 + (samples - params.STFT_WINDOW_SAMPLES) // params.STFT_HOP_SAMPLES
    return 1 + (frames - params.EXAMPLE_FRAMES) // params.EXAMPLE_HOP_FRAMES


def num_log_mel_examples(num_samples):
    """Examples LogMelFrontend makes of `num_samples` samples (at least one: short input is padded)."""
    return _examples_of(max(num_samples, params.MIN_EXAMPLE_SAMPLES))


def log_mel_example_counts(lengths):
    """int32 [B]: `num_log_mel_examples` of every clip length in `lengths` (a tensor)."""
    return _examples_of(tf.maximum(tf.cast(lengths, tf.int32), params.MIN_EXAMPLE_SAMPLES))


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class LogMelFrontend(keras.layers.Layer):
    """16 kHz waveform [B, N] -> VGGish log-mel examples [B, T, 96, 64].

    The VGGish input pipeline exactly (shared/docs/vggish.md section 1): periodic Hann window of
    25 ms, 10 ms hop, 512-point FFT magnitude, 64 HTK mel bands from 125 to 7500 Hz with the DC bin
    excluded, natural log of (mel + 0.01), non-overlapping 0.96 s examples of 96 frames.
    T = 1 + (F - 96) // 96 with F = 1 + (N - 400) // 160; samples that do not fill a whole example are
    dropped, as in the reference. A waveform shorter than one example (15,600 samples, 0.975 s) is
    zero-padded at the end to exactly one example, where the reference would return none.

    Padding is left out: a clip ends one past its last non-zero sample (`layers.masking.signal_lengths`) and its
    examples past `num_log_mel_examples(length)` are zero, so a clip gives the same examples alone and
    zero-padded in a batch of longer clips.

    Written with `tf.signal` rather than `keras.ops`: it must match the reference's periodic Hann
    window and goes into the TF Serving graph as core ops. Always computes in float32 (the waveform is
    never autocast to float16); the output has the layer's compute dtype.
    """

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        shortfall = tf.maximum(0, params.MIN_EXAMPLE_SAMPLES - tf.shape(waveform)[-1])
        waveform = tf.pad(waveform, [[0, 0], [0, shortfall]])
        lengths = signal_lengths(waveform)
        magnitude = tf.abs(
            tf.signal.stft(
                waveform,
                frame_length=params.STFT_WINDOW_SAMPLES,
                frame_step=params.STFT_HOP_SAMPLES,
                fft_length=params.FFT_LENGTH,
                window_fn=tf.signal.hann_window,  # periodic, as the reference
            )
        )
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=params.NUM_MEL_BANDS,
            num_spectrogram_bins=params.FFT_LENGTH // 2 + 1,
            sample_rate=params.SAMPLE_RATE,
            lower_edge_hertz=params.MEL_MIN_HZ,
            upper_edge_hertz=params.MEL_MAX_HZ,
        )
        log_mel = tf.math.log(tf.tensordot(magnitude, mel_matrix, axes=1) + params.LOG_OFFSET)
        examples = tf.signal.frame(log_mel, params.EXAMPLE_FRAMES, params.EXAMPLE_HOP_FRAMES, axis=-2)
        valid = step_mask(log_mel_example_counts(lengths), tf.shape(examples)[1])[:, :, None, None]
        examples = tf.where(valid, examples, 0.0)
        return tf.cast(examples, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        num_samples = input_shape[-1]
        num_examples = None if num_samples is None else num_log_mel_examples(num_samples)
        return (input_shape[0], num_examples, params.EXAMPLE_FRAMES, params.NUM_MEL_BANDS)
