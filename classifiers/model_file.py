"""The project's small model files (heads): gzipped JSON, never pickle, since a model file is data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_model_file(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No name, mtime=0: the same model gives the same bytes, so retraining shows no spurious diff.
    with path.open("wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return path


def read_model_file(path: Path, expected_format: str) -> dict:
    """The file's JSON object. Raises FileNotFoundError, OSError/EOFError (not gzip),
    UnicodeDecodeError, json.JSONDecodeError, or ValueError (another format)."""
    with gzip.open(path, "rb") as fh:
        data = json.loads(fh.read().decode("utf-8"))
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"format {found!r}, expected {expected_format!r}")
    return data
