"""The paper's MFCC features (section 5.1) as a Keras layer."""

import keras
import librosa
import numpy as np
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.layers.masking import signal_lengths, step_mask

__all__ = ["MFCCFrontend", "num_mfcc_frames", "mfcc_frame_counts"]


def _frames_of(samples):
    return 1 + (samples - params.MFCC_FFT_LENGTH) // params.MFCC_HOP_SAMPLES


def num_mfcc_frames(num_samples):
    """MFCC frames of `num_samples` samples (at least one: a short input is padded to one window)."""
    return _frames_of(max(num_samples, params.MFCC_FFT_LENGTH))


def mfcc_frame_counts(lengths):
    """int32 [B]: `num_mfcc_frames` of every clip length in `lengths` (a tensor)."""
    return _frames_of(tf.maximum(tf.cast(lengths, tf.int32), params.MFCC_FFT_LENGTH))


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class MFCCFrontend(keras.layers.Layer):
    """16 kHz waveform [B, N] -> MFCC frames [B, F, num_coefficients] (paper, section 5.1).

    The paper extracts MFCCs with librosa using a window of 1024 samples, an overlap of 360 (hop 664)
    and 240 frames per 10 s clip, which is librosa's `feature.mfcc(y, sr=16000, n_fft=1024,
    hop_length=664, center=False)` with its other defaults: periodic Hann window, power spectrum,
    128 Slaney-normalised mel bands over 0-8 kHz, `power_to_db` (ref 1, amin 1e-10, top_db 80 below the
    clip's maximum) and an orthonormal DCT-II keeping the first 20 coefficients.
    F = 1 + (N - 1024) // 664 (240 for 160,000 samples); a waveform shorter than one window is zero-padded
    to one window. Time-major, unlike librosa's [n_mfcc, frames].

    Padding is left out: a clip ends one past its last non-zero sample (`layers.masking.signal_lengths`), its
    frames past `num_mfcc_frames(length)` are zero and the top_db peak is taken over the others, so a clip gives
    the same frames alone and zero-padded in a batch of longer clips.

    Args:
        num_coefficients: MFCCs kept per frame (librosa's `n_mfcc`).
        num_mel_bands: mel bands before the DCT (librosa's `n_mels`).
        top_db: floor of the dB spectrogram below its per-clip maximum; None for no floor.
    """

    def __init__(
        self,
        num_coefficients=params.MFCC_NUM_COEFFICIENTS,
        num_mel_bands=params.MFCC_NUM_MEL_BANDS,
        top_db=params.MFCC_TOP_DB,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)
        if not 0 < num_coefficients <= num_mel_bands:
            raise ValueError(
                f"num_coefficients must be in 1..num_mel_bands ({num_mel_bands}), got {num_coefficients}"
            )
        self.num_coefficients = num_coefficients
        self.num_mel_bands = num_mel_bands
        self.top_db = top_db
        # librosa builds the filter bank once; it is a constant of the graph.
        self._mel_matrix = np.ascontiguousarray(
            librosa.filters.mel(sr=params.SAMPLE_RATE, n_fft=params.MFCC_FFT_LENGTH, n_mels=num_mel_bands).T
        )

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        shortfall = tf.maximum(0, params.MFCC_FFT_LENGTH - tf.shape(waveform)[-1])
        waveform = tf.pad(waveform, [[0, 0], [0, shortfall]])
        lengths = signal_lengths(waveform)
        spectrum = tf.signal.stft(
            waveform,
            frame_length=params.MFCC_FFT_LENGTH,
            frame_step=params.MFCC_HOP_SAMPLES,
            fft_length=params.MFCC_FFT_LENGTH,
            window_fn=tf.signal.hann_window,
        )
        power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
        mel = tf.tensordot(power, tf.constant(self._mel_matrix), axes=1)
        decibels = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / np.log(10.0)
        valid = step_mask(mfcc_frame_counts(lengths), tf.shape(decibels)[1])[:, :, None]
        if self.top_db is not None:
            peak = tf.reduce_max(tf.where(valid, decibels, -np.inf), axis=[-2, -1], keepdims=True)
            decibels = tf.maximum(decibels, peak - self.top_db)
        mfcc = tf.signal.dct(decibels, type=2, norm="ortho")[..., : self.num_coefficients]
        return tf.cast(tf.where(valid, mfcc, 0.0), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        num_samples = input_shape[-1]
        num_frames = None if num_samples is None else num_mfcc_frames(num_samples)
        return (input_shape[0], num_frames, self.num_coefficients)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_coefficients=self.num_coefficients, num_mel_bands=self.num_mel_bands, top_db=self.top_db
        )
        return config
