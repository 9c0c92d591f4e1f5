"""Text normalisation shared by training and inference, so both see posts the same way."""

from __future__ import annotations

import re

_USER = re.compile(r"(?<![\w@])@\w{1,30}")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def normalise_post(text: str) -> str:
    """Handles and links carry no sentiment and are unknown words to the encoder."""
    text = _URL.sub("http", text)
    return _USER.sub("@user", text)


def unescape_json_escapes(text: str) -> str:
    """Some corpora (SemEval's redistribution) keep `\\u002c`-style escapes as literal text."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
