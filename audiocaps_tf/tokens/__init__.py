"""Caption text, the leaf every other module may import: normalisation (the paper's section 3.3) and tokenizers.

    captions.py     normalize_caption, tokenize
    vocabulary.py   the special ids (<pad> 0, <bos> 1, <eos> 2, <unk> 3), the word vocabulary and SentencePiece

It imports nothing of the package but itself, so layers, decoding and models read the special ids from here.
"""

from audiocaps_tf.tokens.captions import normalize_caption, tokenize
from audiocaps_tf.tokens.vocabulary import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceVocabulary,
    Vocabulary,
    WordVocabulary,
    build_vocabulary,
    load_vocabulary,
    vocabulary_from_config,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "SentencePieceVocabulary",
    "Vocabulary",
    "WordVocabulary",
    "build_vocabulary",
    "load_vocabulary",
    "normalize_caption",
    "tokenize",
    "vocabulary_from_config",
]
