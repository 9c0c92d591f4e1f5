"""The project's small model files (heads): gzipped JSON, never pickle, since a model file is data."""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib
from pathlib import Path

import numpy as np

# Arrays are stored in these widths only: float16 for large matrices whose last digits do not matter.
STORED_DTYPES = ("float16", "float32", "float64")
# The largest head unpacks to about 6 MB; a file that unpacks past this is not one we wrote (a
# gzip bomb of 1 MB unpacks to gigabytes).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


def write_model_file(path: Path, data: dict) -> Path:
    """Written under another name first and then renamed, so a save cut short (a full disk)
    leaves the previous file whole; opened as usual, so the umask decides who may read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.saving")
    try:
        # No name, mtime=0: the same model gives the same bytes, so retraining shows no spurious diff.
        with temporary.open("wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number a model file may hold")


def read_model_file(path: Path, expected_format: str) -> dict:
    """The file's JSON object. Raises FileNotFoundError, OSError/EOFError (not gzip),
    UnicodeDecodeError, json.JSONDecodeError, or ValueError (a damaged stream, NaN or
    Infinity, nesting or size past any model's, another format)."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read(MAX_UNPACKED_BYTES + 1)
        if len(raw) > MAX_UNPACKED_BYTES:
            raise ValueError(f"unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB")
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except zlib.error as exc:
        raise ValueError(f"damaged gzip stream ({exc})") from None
    except RecursionError:
        raise ValueError("nested deeper than any model file") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"format {found!r}, expected {expected_format!r}")
    return data


def encode_array(values, dtype: str) -> dict:
    """A numeric array as little-endian `dtype` bytes in base64: a tenth of the size of JSON numbers."""
    array = np.asarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(stored: dict) -> np.ndarray:
    """The array `encode_array` stored, as float64. Raises KeyError, TypeError or ValueError
    (an unknown dtype, bytes that do not fill the shape, values that are not finite)."""
    dtype = stored["dtype"]
    if dtype not in STORED_DTYPES:
        raise ValueError(f"array dtype {dtype!r}, expected one of {STORED_DTYPES}")
    shape = tuple(int(n) for n in stored["shape"])
    raw = base64.b64decode(stored["data"], validate=True)
    values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if values.size != int(np.prod(shape)):
        raise ValueError(f"array of shape {shape} holds {values.size} values")
    values = values.reshape(shape).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("array values are not all finite")
    return values


def round_trip(values, dtype: str) -> np.ndarray:
    """`values` as they will read back from a file: a fitted model uses these, so a loaded copy
    gives identical numbers."""
    return np.asarray(values, dtype=dtype).astype(np.float64)
