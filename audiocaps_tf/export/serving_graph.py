"""The serving signatures of an exported captioner: WAV bytes or a waveform in; caption, score and tokens out.

    serving_default   audio        tf.string [batch]  WAV file bytes, any rate from 8 to 192 kHz, any channel count
    caption_waveform  waveform     float32 [batch, samples], mono, zero-padded at the end to the longest row
                      sample_rate  int32 [batch], the rate of each row
    both ->           caption      tf.string [batch]
                      score        float32 [batch]  length-normalised log-probability (0 for the 1NN models)
                      tokens       int32 [batch, L] the caption's ids, ending with <eos>, padded with 0
    caption_segments  audio        tf.string [batch]  WAV bytes of any length up to the export's maximum, captioned
                                                  window by window (`segments_graph`)

In the first two every clip is shaped as `load_audio` shapes a file for `python -m audiocaps_tf.caption
--no-segments`: channels averaged, resampled to 16 kHz, then cut or zero-padded at the end to 10 s
(`params.CLIP_SECONDS`), the length the models are trained on. The whole pipeline is in the graph, in core
TensorFlow ops: decoding (`audio.graph`), resampling, the model's frontend and encoder, greedy or beam search and
detokenisation. Bad audio raises InvalidArgumentError with a message starting "audio:".
"""

import tensorflow as tf

import keras

from audiocaps_tf import params
from audiocaps_tf.audio.graph import wav_to_waveform, waveform_to_clip
from audiocaps_tf.export.segments_graph import DEFAULT_MAX_SECONDS, SEGMENTS_SIGNATURE, caption_segments

DEFAULT_SIGNATURE = "serving_default"
WAVEFORM_SIGNATURE = "caption_waveform"
OUTPUT_NAMES = ("caption", "score", "tokens")
CLIP_SAMPLES = int(round(params.CLIP_SECONDS * params.SAMPLE_RATE))
INPUT_SIGNATURES = {
    DEFAULT_SIGNATURE: [tf.TensorSpec([None], tf.string, name="audio")],
    WAVEFORM_SIGNATURE: [
        tf.TensorSpec([None, None], tf.float32, name="waveform"),
        tf.TensorSpec([None], tf.int32, name="sample_rate"),
    ],
    SEGMENTS_SIGNATURE: [tf.TensorSpec([None], tf.string, name="audio")],  # outputs: `segments_graph`
}


def _check(condition, message):
    """An Assert whose message is `message`, which starts with "audio:" as the WAV decoder's do."""
    return tf.debugging.Assert(condition, [message], summarize=1)


def _non_empty_batch(tensor):
    with tf.control_dependencies([_check(tf.shape(tensor)[0] > 0, "audio: the request holds no clips")]):
        return tf.identity(tensor)


def wav_clips(audio):
    """tf.string [B] of WAV bytes -> float32 [B, CLIP_SAMPLES] at 16 kHz."""
    audio = _non_empty_batch(audio)
    clip = tf.TensorSpec([CLIP_SAMPLES], tf.float32)
    return tf.map_fn(wav_to_waveform, audio, fn_output_signature=clip)


def waveform_clips(waveform, sample_rate):
    """float32 [B, N] with int32 rates [B] -> float32 [B, CLIP_SAMPLES] at 16 kHz (each row at its own rate)."""
    waveform = _non_empty_batch(waveform)
    checks = [
        _check(
            tf.equal(tf.shape(waveform)[0], tf.shape(sample_rate)[0]),
            "audio: waveform and sample_rate have different batch sizes",
        ),
        _check(tf.shape(waveform)[1] > 0, "audio: the waveforms are empty (0 samples)"),
        _check(tf.reduce_all(tf.math.is_finite(waveform)), "audio: the waveform holds NaN or infinite samples"),
        _check(
            tf.reduce_all((sample_rate >= params.MIN_SAMPLE_RATE) & (sample_rate <= params.MAX_SAMPLE_RATE)),
            f"audio: sample_rate outside the supported range [{params.MIN_SAMPLE_RATE}, {params.MAX_SAMPLE_RATE}] Hz",
        ),
    ]
    with tf.control_dependencies(checks):
        waveform = tf.identity(waveform)
    clip = tf.TensorSpec([CLIP_SAMPLES], tf.float32)
    return tf.map_fn(lambda row: waveform_to_clip(row[0], row[1]), (waveform, sample_rate), fn_output_signature=clip)


class CaptionSignatures:
    """The serving functions of one captioner (any `models.Captioner`).

    `caption(waveforms)` is what both signatures end with; `archive()` is a `keras.export.ExportArchive` holding
    the model and the two signatures, ready for `write_out`.
    """

    def __init__(self, model, beam_size=1, max_length=None, no_repeat_ngram_size=0, max_seconds=DEFAULT_MAX_SECONDS):
        if int(beam_size) < 1:
            raise ValueError(f"beam_size must be at least 1; got {beam_size}")
        if not float(max_seconds) > 0:
            raise ValueError(f"max_seconds must be positive; got {max_seconds}")
        self.max_seconds = float(max_seconds)
        self.model = model
        self.beam_size = int(beam_size)
        self.max_length = max_length
        self.no_repeat_ngram_size = int(no_repeat_ngram_size)

    def caption(self, waveforms):
        """float32 [B, CLIP_SAMPLES] at 16 kHz -> {"caption", "score", "tokens"}."""
        result = self.model.decode({"waveform": waveforms}, beam_size=self.beam_size, max_length=self.max_length,
                                   no_repeat_ngram_size=self.no_repeat_ngram_size)
        tokens = tf.cast(result["tokens"], tf.int32)
        return {"caption": self.model.caption_strings(result), "score": tf.cast(result["scores"], tf.float32), "tokens": tokens}

    def serving_default(self, audio):
        return self.caption(wav_clips(audio))

    def caption_waveform(self, waveform, sample_rate):
        return self.caption(waveform_clips(waveform, sample_rate))

    def caption_segments(self, audio):
        return caption_segments(self.caption, _non_empty_batch(audio), self.max_seconds)

    def archive(self):
        # The endpoints track the variables they use. `archive.track(model)` is left out on purpose: it would save
        # every weight a second time, through its Keras variable (twice the size on disk and in TF Serving's RAM),
        # and it only matters for lookup tables, which the graph has none of.
        archive = keras.export.ExportArchive()
        archive.add_endpoint(DEFAULT_SIGNATURE, self.serving_default, INPUT_SIGNATURES[DEFAULT_SIGNATURE])
        archive.add_endpoint(WAVEFORM_SIGNATURE, self.caption_waveform, INPUT_SIGNATURES[WAVEFORM_SIGNATURE])
        archive.add_endpoint(SEGMENTS_SIGNATURE, self.caption_segments, INPUT_SIGNATURES[SEGMENTS_SIGNATURE])
        return archive
