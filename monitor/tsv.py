"""Reading the labelled TSV files the evaluations use (tab-separated, a header row, no quoting)."""

from __future__ import annotations

import csv
from pathlib import Path


# csv's default refuses a field over 128 KiB; a post that long is still a post to score (the
# classifiers cap what they read), so only a field past this is an error.
MAX_FIELD_CHARS = 16 * 1024 * 1024


class TsvError(ValueError):
    """A file that cannot be used; the message names it and what is wrong."""


class TsvRow(dict):
    """One row, by column name; `line` is where it is in the file (the header is line 1)."""

    line: int


def read_tsv(path: Path, required: tuple[str, ...]) -> list[TsvRow]:
    """Every row; each column in `required` must be in the header, and every row must have a
    value for each of them (a row cut short is an error naming its line, not a row lost)."""
    # csv's limit is process-wide: raised when a file is read, not whenever this module is imported.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    try:
        # utf-8-sig: a byte order mark (spreadsheet exports write one) is not part of the first column's name.
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows = []
            try:
                missing = [c for c in required if c not in (reader.fieldnames or [])]
                if missing:
                    raise TsvError(f"{path} has no column(s) {', '.join(missing)} in its header")
                for values in reader:
                    short = [c for c in required if values[c] is None]
                    if short:
                        raise TsvError(f"{path} line {reader.line_num}: no value for {', '.join(short)} "
                                       f"(fewer tab-separated fields than the header has)")
                    row = TsvRow(values)
                    row.line = reader.line_num
                    rows.append(row)
            except csv.Error as exc:
                # DictReader counts a line only once its row is read; its reader counts the failing one.
                raise TsvError(f"{path} line {reader.reader.line_num}: {exc}") from None
            return rows
    except UnicodeDecodeError:
        raise TsvError(f"{path} is not UTF-8 text (line {_first_line_not_utf8(path)})") from None
    except OSError as exc:
        raise TsvError(f"cannot read {path}: {exc.strerror}") from None


def _first_line_not_utf8(path: Path) -> int:
    """Which line to fix: the decoder's error counts bytes of a buffer, not lines."""
    number = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return number
