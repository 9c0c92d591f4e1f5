"""What several sources send in the same awkward shape: HTML bodies and over-long ids."""

from __future__ import annotations

import hashlib
import html
import re

MAX_ID_LENGTH = 128  # the store's external id column


def plain_text(markup: str | None) -> str:
    """Feed summaries and Mastodon posts are HTML; a mention's text is plain, on one line per block."""
    with_breaks = re.sub(r"(?i)<br\s*/?>|</p>", "\n", markup or "")
    lines = html.unescape(re.sub(r"<[^>]+>", " ", with_breaks)).split("\n")
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def fit_id(raw: str) -> str:
    """A source's id as the store keeps it: ids that are long URLs are hashed to fit the column."""
    # surrogatepass: an id with a lone surrogate escape still hashes (the store gets no surrogate).
    return raw if len(raw) <= MAX_ID_LENGTH else "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
