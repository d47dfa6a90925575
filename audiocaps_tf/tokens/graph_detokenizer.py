"""Caption ids to text inside the serving graph, with the same result as `Vocabulary.decode`.

A constant string tensor of the tokens and `tf.gather` + `tf.strings.reduce_join`: core ops only, and no lookup
table (raw `tf.lookup` tables inside a Keras `ExportArchive` can end up untracked).
"""

import tensorflow as tf

from audiocaps_tf.tokens.vocabulary import BOS_ID, EOS_ID, PAD_ID

# What SentencePiece prints for its <unk> piece (its default `unk_surface`), and its word-boundary mark.
SENTENCEPIECE_UNK_SURFACE = " \u2047 "
SENTENCEPIECE_SPACE = "\u2581"


def kept_tokens(tokens):
    """bool [B, L]: the ids `Vocabulary.decode` keeps: before the first <eos>, neither <pad> nor <bos>."""
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    before_eos = tf.equal(tf.cumsum(tf.cast(tf.equal(tokens, EOS_ID), tf.int32), axis=1), 0)
    return before_eos & tf.not_equal(tokens, PAD_ID) & tf.not_equal(tokens, BOS_ID)


def graph_detokenizer(vocabulary):
    """A function int32 tokens [B, L] -> tf.string [B], the captions as `vocabulary.decode` writes them.

    Word vocabularies join their words with spaces. SentencePiece joins its pieces, drops the word-boundary marks
    at the start and turns the others into spaces, and writes " ⁇ " for <unk>, as the SentencePiece decoder does.
    """
    if vocabulary.kind == "word":
        pieces, separator = list(vocabulary.id_to_token), " "
    elif vocabulary.kind == "sentencepiece":
        pieces, separator = list(vocabulary.id_to_token), ""
        pieces[vocabulary.token_to_id("<unk>")] = SENTENCEPIECE_UNK_SURFACE
    else:
        raise ValueError(f"no graph detokenizer for a {vocabulary.kind!r} vocabulary")
    table = tf.constant(pieces, tf.string)

    def detokenize(tokens):
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        words = tf.ragged.boolean_mask(tf.gather(table, tokens), kept_tokens(tokens))
        text = tf.strings.reduce_join(words, axis=1, separator=separator)
        if vocabulary.kind == "sentencepiece":
            text = tf.strings.regex_replace(text, f"^{SENTENCEPIECE_SPACE}+", "")
            text = tf.strings.regex_replace(text, SENTENCEPIECE_SPACE, " ")
        return text

    return detokenize
