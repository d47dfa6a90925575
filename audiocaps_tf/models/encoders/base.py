"""`AudioEncoder`: what every captioner encoder returns, so tasks, decoders and search never ask which one it is.

An encoder is a Keras layer with this mixin. `encode(features, inputs, training)` takes the preprocessor's
features ({record field: [B, T, C]}, zero-padded) and the task's inputs (for encoders that read more than audio,
such as attribute words) and returns

    {"memories":      [M_i [B, T_i, D_i]]    what the decoder attends over (ignored by decoders without attention),
     "memory_masks":  [[B, T_i] bool]         True at valid steps,
     "initial_state": [B, S]                  the encoded audio, the decoder's initial state (section 5.2)}

`fields` names the features it reads, `memory_depths` the D_i and `state_size` S, all known before building.
A new encoder is one class with this mixin and one line in `models.registry`.
"""

from audiocaps_tf.features import feature

__all__ = ["AudioEncoder"]


class AudioEncoder:
    """Mixin of captioner encoders (see the module docstring)."""

    fields = ()

    @classmethod
    def from_spec(cls, spec, hyper, dtype=None, **attribute_options):
        """The encoder of the registry entry `spec` with the resolved hyper-parameters `hyper`."""
        raise NotImplementedError

    @property
    def memory_depths(self):
        """Depths of the memories; by default one, a biLSTM's 2 * units outputs."""
        return (2 * self.units,)

    @property
    def state_size(self):
        """Size of the encoded audio; by default a biLSTM's [fw; bw] final states."""
        return 2 * self.units

    def encode(self, features, inputs=None, training=False):
        raise NotImplementedError

    def feature_shapes(self):
        """{field: (None, None, size)} of the fields it reads: what it is built with."""
        return {field: (None, None, feature(field).size) for field in self.fields}

    def get_build_config(self):
        return None  # built by its captioner (`build_encoder`), with the semantic layers of subclasses too

    def model_inputs(self, inputs):
        """Entries of a pipeline element besides the features that this encoder reads (numeric): none here."""
        return {}

    def check_ready(self):
        """Raises ValueError when the encoder cannot caption yet (e.g. an empty index); nothing here."""
