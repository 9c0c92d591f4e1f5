"""Reading the labelled TSV files the evaluations use (tab-separated, a header row, no quoting)."""

from __future__ import annotations

import csv
from pathlib import Path


class TsvError(ValueError):
    """A file that cannot be used; the message names it and what is wrong."""


def read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows that have a `text` value; every column in `required` must be in the header."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise TsvError(f"{path} has no column(s) {', '.join(missing)} in its header")
            return [row for row in reader if row.get("text") is not None]
    except UnicodeDecodeError:
        raise TsvError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise TsvError(f"cannot read {path}: {exc.strerror}") from None
