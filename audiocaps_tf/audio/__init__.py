"""Audio in: files to waveforms in NumPy (`load_audio`), and WAV bytes to waveforms in core TF ops (serving path)."""

from audiocaps_tf.audio.graph import decode_wav, resample, wav_to_waveform, waveform_to_clip
from audiocaps_tf.audio.loading import AudioError, load_audio

__all__ = ["AudioError", "load_audio", "decode_wav", "resample", "wav_to_waveform", "waveform_to_clip"]
