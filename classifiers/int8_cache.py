"""Built int8 models kept on disk between runs.

Building the int8 encoder (`classifiers.quantization`) means importing torch, loading the float
encoder, exporting and quantizing it: seconds at every start, and the process's peak memory.
The result depends only on the adapter file, the pinned encoder, the code that builds it and
the versions of the libraries that export it, so it is kept under a key made of all of these:
a new adapter, encoder, build code or library gives a new key and a fresh build, never a stale
model. Files are written whole (to a temporary name, then renamed), so a reader never sees half
of one, and entries unused for `KEEP_DAYS` are removed when another is stored. Each model's
sha256 is kept beside it and checked before it is read: a file changed since it was built (a
disk error, a copy cut short that still parses) is built again, not read as a different model.

The folder belongs to the user who runs the monitor, like its virtual environment: whoever can
write to it could replace a model, as they could replace the installed code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from classifiers.encoder import sha256_file

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ESCALATION_MONITOR_CACHE_DIR"
KEEP_DAYS = 30
# Libraries whose version can change the exported model.
EXPORT_LIBRARIES = ("torch", "transformers", "onnx")
_PREFIX, _SUFFIX, _DIGEST_SUFFIX = "minilm-int8-", ".onnx", ".sha256"


def default_cache_dir() -> Path | None:
    """$ESCALATION_MONITOR_CACHE_DIR when set (set but empty: no cache), else the platform's cache
    folder for this user (e.g. ~/.cache/escalation-monitor on Linux)."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    from platformdirs import user_cache_path

    return user_cache_path("escalation-monitor", appauthor=False)


def _version(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "absent"


def cache_key(parts: Iterable[str], code_files: Iterable[Path]) -> str:
    """sha256 of `parts` (digests of the model's files, settings), of the build code's bytes and of
    the export libraries' versions."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    for path in code_files:
        digest.update(path.read_bytes() + b"\0")
    for library in EXPORT_LIBRARIES:
        digest.update(f"{library}=={_version(library)}\0".encode())
    return digest.hexdigest()


class Int8Cache:
    """The built models in `folder`, one file per key."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{_PREFIX}{key[:32]}{_SUFFIX}"

    def _digest_path(self, key: str) -> Path:
        return self.path(key).with_suffix(_DIGEST_SUFFIX)

    def find(self, key: str) -> Path | None:
        """The model stored under `key`, if any and as it was stored; its time is renewed, so models
        in use are kept. One whose sha256 is not the one recorded is removed."""
        path = self.path(key)
        try:
            recorded = self._digest_path(key).read_text(encoding="ascii").strip()
            actual = sha256_file(path)
        except (OSError, UnicodeDecodeError):  # none stored, or stored without its digest
            return None
        try:
            os.utime(path)
        except OSError:  # a read-only cache (a mounted volume): the model is still the one built
            pass
        if actual != recorded:
            log.warning("int8 model %s changed since it was built (sha256 %s, recorded %s): building it again",
                        path, actual[:12], recorded[:12])
            self.discard(key)
            return None
        return path

    def store(self, key: str, built: Path) -> None:
        """Keep a copy of the model file `built` under `key`. Failing to (a read-only or full disk)
        costs only the next start's time: it is logged, not raised."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".building-", dir=self.folder)
            os.close(handle)
            try:
                shutil.copyfile(built, temporary)
                digest = sha256_file(Path(temporary))
                os.replace(temporary, self.path(key))
                # Written after the model: a reader in between finds the old digest or none, and builds.
                handle, temporary = tempfile.mkstemp(prefix=".building-", dir=self.folder)
                with os.fdopen(handle, "w", encoding="ascii") as fh:
                    fh.write(digest + "\n")
                os.replace(temporary, self._digest_path(key))
            finally:
                Path(temporary).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("int8 model not kept in %s (%s): the next start builds it again", self.folder, exc)
            return
        self._remove_unused(keep=self.path(key))

    def discard(self, key: str) -> None:
        for path in (self._digest_path(key), self.path(key)):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # another user's file, say: the next store replaces it, or logs why not
                log.warning("unusable int8 model %s not removed (%s)", path, exc)

    def _remove_unused(self, keep: Path) -> None:
        cutoff = time.time() - KEEP_DAYS * 86400
        for path in self.folder.glob(f"{_PREFIX}*{_SUFFIX}"):
            try:
                if path != keep and path.stat().st_mtime < cutoff:
                    path.with_suffix(_DIGEST_SUFFIX).unlink(missing_ok=True)
                    path.unlink()
            except OSError:  # another process removed or renewed it meanwhile
                continue
