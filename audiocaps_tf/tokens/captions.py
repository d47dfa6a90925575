"""Caption normalisation as in the AudioCaps paper (section 3.3): no punctuation, numbers as words.

`normalize_caption` turns a raw caption into lowercase words separated by single spaces:

- Unicode is folded to its closest plain form (NFKC, accents dropped: "café" -> "cafe"); curly quotes count as
  apostrophes.
- Numbers become words with num2words, before punctuation is removed, so its hyphens and commas follow the rules
  below: "2" -> "two", "21" -> "twenty one", "1,200" -> "one thousand two hundred", "105" -> "one hundred and five".
  Ordinals: "1st" -> "first", "22nd" -> "twenty second". Plurals (decades): "30s" -> "thirties", "6s" -> "sixes".
  Decimals read their digits one by one: "3.5" -> "three point five", "0.25" -> "zero point two five".
  Digits glued to letters are split off: "mp3" -> "mp three", "30sec" -> "thirty sec". Runs of more than 15
  digits (identifiers, phone numbers) are read digit by digit.
- Apostrophes are deleted, joining the word: "man's" -> "mans", "it's" -> "its", "vehicles'" -> "vehicles".
  This keeps one token per written word rather than a stray "s" token.
- Every other non-alphanumeric character (period, comma, hyphen, slash, brackets, ...) becomes a space, so
  "high-pitched" -> "high pitched" and "barks,then" -> "barks then". The final period disappears this way.
- Whitespace is collapsed to single spaces and stripped; a caption of only punctuation normalises to "".

The paper's grammar correction (languagetool) and spaCy tokenisation are not reproduced: after the steps above,
splitting on spaces is the tokenisation.
"""

import re
import unicodedata

from num2words import num2words

__all__ = ["normalize_caption", "tokenize", "number_to_words"]

_NUMBER = re.compile(
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)"  # 12 or 1,200 (thousands separators)
    r"(?:\.(?P<frac>\d+))?"  # 3.5
    r"(?P<suffix>(?:st|nd|rd|th|s)(?![a-z0-9]))?"  # 1st, 30s (only as a whole word ending)
)
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`\u00b4]")
_NOT_WORD = re.compile(r"[\W_]+")
_MAX_CARDINAL_DIGITS = 15


def _cardinal(digits):
    if len(digits) > _MAX_CARDINAL_DIGITS:  # an identifier or phone number rather than a quantity
        return " ".join(num2words(int(d)) for d in digits)
    try:
        return num2words(int(digits))
    except (OverflowError, NotImplementedError, ValueError):  # too large for num2words: read digit by digit
        return " ".join(num2words(int(d)) for d in digits)


def _plural(word):
    if word.endswith("y"):
        return word[:-1] + "ies"
    if word.endswith(("x", "s")):
        return word + "es"
    return word + "s"


def number_to_words(integer, fraction=None, suffix=None):
    """Words for one written number, e.g. ("22", None, "nd") -> "twenty-second"; may contain hyphens/commas."""
    integer = integer.replace(",", "")
    if fraction:
        words = _cardinal(integer) + " point " + " ".join(num2words(int(d)) for d in fraction)
        return f"{words} {suffix}" if suffix else words
    if suffix in ("st", "nd", "rd", "th"):
        try:
            return num2words(int(integer), to="ordinal")
        except (OverflowError, NotImplementedError, ValueError):
            return f"{_cardinal(integer)} {suffix}"
    if suffix == "s":
        return _plural(_cardinal(integer))
    return _cardinal(integer)


def _replace_number(match):
    return " " + number_to_words(match["int"], match["frac"], match["suffix"]) + " "


def normalize_caption(text):
    """The caption as lowercase words joined by single spaces (rules in the module docstring)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
        text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.lower()
    if any(c.isdigit() for c in text):
        text = _NUMBER.sub(_replace_number, text)
    text = _APOSTROPHES.sub("", text)
    text = _NOT_WORD.sub(" ", text)
    return " ".join(text.split())


def tokenize(text):
    """The normalised caption's words."""
    return normalize_caption(text).split()
