"""The one table of audio features: record field -> size, the frontend that computes it, the `prepare` name.

    field          size   frontend   prepare --features   VGGish output
    mfcc            20    mfcc       mfcc                 -
    vggish_fc2     128    vggish     vggish               fc2
    vggish_conv4   512    vggish     vggish               conv4
    vggish_conv3   256    vggish     vggish               conv3
    log_mel         64    log_mel    log_mel              -    (VGGish's log-mel frames, a [T, 64] sequence)
    waveform         -    -          waveform             -    (16 kHz int16 samples; models compute the rest)

A field is the name a feature has everywhere: in prepared TFRecords, in pipeline batches, in a model's inputs
and in `ModelSpec.features`. The preprocessor (`models.preprocessor`), `prepare`, the 1NN baselines and `fit`
read sizes and names from here.
"""

import dataclasses

from audiocaps_tf import params

__all__ = ["Feature", "FEATURES", "PREPARE_FEATURES", "feature", "prepare_features", "vggish_outputs"]


@dataclasses.dataclass(frozen=True)
class Feature:
    """One record field. `frontend`: "mfcc", "vggish", "log_mel" or None (the waveform itself)."""

    field: str
    size: int
    frontend: str
    prepare: str
    vggish_output: str = None


FEATURES = {
    "mfcc": Feature("mfcc", params.MFCC_NUM_COEFFICIENTS, "mfcc", "mfcc"),
    "vggish_fc2": Feature("vggish_fc2", params.EMBEDDING_SIZE, "vggish", "vggish", "fc2"),
    "vggish_conv4": Feature("vggish_conv4", 512, "vggish", "vggish", "conv4"),
    "vggish_conv3": Feature("vggish_conv3", 256, "vggish", "vggish", "conv3"),
    "log_mel": Feature("log_mel", params.NUM_MEL_BANDS, "log_mel", "log_mel"),
    "waveform": Feature("waveform", 0, None, "waveform"),
}

# The `prepare --features` names, in the order their fields are listed, and the fields each writes.
PREPARE_FEATURES = {
    name: tuple(f.field for f in FEATURES.values() if f.prepare == name)
    for name in ("waveform", "vggish", "mfcc", "log_mel")
}


def feature(field):
    """The `Feature` of a record field; a ValueError names the known fields."""
    try:
        return FEATURES[field]
    except KeyError:
        raise ValueError(f"unknown feature field {field!r}; known: {', '.join(FEATURES)}") from None


def vggish_outputs(fields):
    """The VGGish outputs ("fc2", "conv4", "conv3") that `fields` need, in the order of `fields`."""
    return tuple(feature(f).vggish_output for f in fields if feature(f).vggish_output)


def prepare_features(fields):
    """The `prepare --features` names that write the record `fields`, in `PREPARE_FEATURES` order."""
    names = {feature(f).prepare for f in fields}
    return [name for name in PREPARE_FEATURES if name in names]

