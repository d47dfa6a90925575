"""The semantic encoder of aligned semantic attention (paper, section 4.2, eq. 4)."""

import keras

from audiocaps_tf.layers.sequence_encoder import BiLSTMEncoder


@keras.saving.register_keras_serializable(package="audiocaps_tf")
class SemanticEncoder(keras.layers.Layer):
    """Attribute word ids [B, N] (0 = padding) -> word features h_w [B, N, 2 * units].

    Eq. (4): d_n = W_emb w_n (section 4, a 300-D embedding, fastText-initialised in the paper), then
    h_w_n = biLSTM(d_n, fw_h_w_{n-1}, bw_h_w_{n+1}).

    Masking: the mask is computed from the ids (`ids != 0`, `compute_mask`); an incoming `mask` is
    ignored. Features at padded words are zero. A row without any attribute word gives all-zero
    features and an all-False mask (never NaN): for such rows the LSTM is run on one dummy step (so a
    cuDNN kernel never sees a zero-length sequence) whose output is then zeroed.

    Args:
        vocabulary_size: rows of the embedding matrix (id 0 is the padding id).
        embedding_dim: size of the word embeddings (300 as fastText).
        units: LSTM units per direction (128 in the authors' code).
        dropout: input dropout of the biLSTM (0.25 for the authors' word encoder).
        embeddings_initializer: initialiser of the embedding matrix; load fastText vectors with
            `layer.embedding.embeddings.assign(matrix)` (or `set_weights`) after building.

    The authors' code looks the attribute words up in the caption embedding matrix of the decoder;
    this layer owns its own matrix (initialise both from the same fastText vectors to match).
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=300,
        units=128,
        dropout=0.25,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.dropout = float(dropout)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.encoder = BiLSTMEncoder(self.units, dropout=self.dropout, dtype=self.dtype_policy, name="encoder")

    def build(self, input_shape):
        self.embedding.build(tuple(input_shape))
        self.encoder.build(tuple(input_shape) + (self.embedding_dim,))
        self.built = True

    def call(self, inputs, mask=None, training=None):
        word_mask = keras.ops.not_equal(inputs, 0)
        # Rows without words: let the LSTM see their first (dummy) step, zeroed below.
        empty = keras.ops.logical_not(keras.ops.any(word_mask, axis=1, keepdims=True))
        first = keras.ops.expand_dims(keras.ops.equal(keras.ops.arange(keras.ops.shape(inputs)[1]), 0), 0)
        lstm_mask = keras.ops.logical_or(word_mask, keras.ops.logical_and(empty, first))
        sequence = self.encoder(self.embedding(inputs), mask=lstm_mask, training=training)["sequence"]
        return sequence * keras.ops.cast(keras.ops.expand_dims(word_mask, -1), sequence.dtype)

    def compute_mask(self, inputs, mask=None):
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (2 * self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            dropout=self.dropout,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
