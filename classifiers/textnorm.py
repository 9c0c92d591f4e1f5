"""Text normalisation shared by training and inference, so both see posts the same way."""

from __future__ import annotations

import re

_USER = re.compile(r"(?<![\w@])@\w{1,30}")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def well_formed(text: str) -> str:
    """`text` as UTF-8 can hold it: a surrogate pair left as two code points is joined, a lone
    surrogate (an emoji an API cut in half, kept by JSON's `\\ud83d` escape; a command-line
    argument that was not UTF-8) becomes U+FFFD, and NUL characters go (PostgreSQL refuses them).
    Each made the tokenizer or the store raise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "")


def normalise_post(text: str) -> str:
    """Handles and links carry no sentiment and are unknown words to the encoder."""
    text = _URL.sub("http", well_formed(text))
    return _USER.sub("@user", text)


def without_handles_and_links(text: str) -> str:
    """What a post says in its own words: "@Vodafone_NL ??" is no German."""
    return _USER.sub(" ", _URL.sub(" ", text))


def has_words(text: str) -> bool:
    """Whether a post holds a letter or digit beyond its handles and links. One that does not
    (emoji, emoticons, punctuation) is only unknown tokens to the encoder: "😡😡" and "😍" read alike."""
    return any(ch.isalnum() for ch in without_handles_and_links(text))


def unescape_json_escapes(text: str) -> str:
    """Some corpora (SemEval's redistribution) keep `\\u002c`-style escapes as literal text."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
