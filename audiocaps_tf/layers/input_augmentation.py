"""`InputAugmentation`: a captioner's training-only augmentations, in the order they run on what it is fed.

    waveform in          WaveformAugmentation (gain, shift)  ->  preprocessor  ->  FeatureMasking
    cached features in                                          FeatureShift   ->  FeatureMasking

So a clip is shifted once whatever it comes as, and masked last. Any part may be None. A captioner holds one as
its `augmentation` (a model with masking alone holds a bare `FeatureMasking`, as models saved before this did);
`models.AudioCaptioner.encode` calls `augment_waveform` before its preprocessor, then the layer on the features.
"""

import keras

__all__ = ["InputAugmentation"]


def _layer(value):
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class InputAugmentation(keras.layers.Layer):
    """The augmentations of one captioner (module docstring).

    Args:
        waveform: a `WaveformAugmentation` (or its config), applied to waveforms before the preprocessor.
        shift: a `FeatureShift` (or its config), applied to cached features only.
        masking: a `FeatureMasking` (or its config), applied to the features in either case.
    """

    def __init__(self, waveform=None, shift=None, masking=None, **kwargs):
        super().__init__(**kwargs)
        self.waveform = _layer(waveform)
        self.shift = _layer(shift)
        self.masking = _layer(masking)

    def _parts(self):
        return [part for part in (self.waveform, self.shift, self.masking) if part is not None]

    def build(self, input_shape=None):
        for part in self._parts():
            if not part.built:
                part.build()
        self.built = True

    def augment_waveform(self, waveform, training=False):
        """waveform [B, N] as the preprocessor should see it."""
        if not training or self.waveform is None:
            return waveform
        return self.waveform(waveform, training=True)

    def call(self, features, training=False, cached=True):
        """The features dict augmented; `cached`: they are the fed features, not computed from a (shifted)
        waveform."""
        if not training:
            return features
        if cached and self.shift is not None:
            features = self.shift(features, training=True)
        if self.masking is not None:
            features = self.masking(features, training=True)
        return features

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        for name in ("waveform", "shift", "masking"):
            part = getattr(self, name)
            config[name] = None if part is None else keras.saving.serialize_keras_object(part)
        return config
