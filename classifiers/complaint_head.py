"""Is this post a complaint? A logistic regression over the bundled encoder's layer features.

The sentiment adapter never trains on complaints: this head reads the adapted encoder's
mean-pooled layer outputs (`MiniLMClassifier.features`; at inference a `feature_heads` entry of
the same pass), so it costs no second encoder pass, and because it is linear on fixed features it is fitted, and
cross-validated honestly, in seconds. scikit-learn style: parameters in the constructor,
`fit`, `predict`, `predict_proba`; `save`/`load` use plain JSON (no pickle: a model file is data).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifiers.model_file import read_model_file, write_model_file

FORMAT = "complaint-head/1"
CLASSES = ("no", "yes")


class ComplaintHeadError(RuntimeError):
    """The complaint head's file is missing, not one this code wrote, or made for another adapter."""


class ComplaintHead:
    """Parameters: `Cs` (inverse regularisation strengths to choose from by inner cross-validation
    on macro-F1), `folds` (inner folds), `seed`. `adapter` names the adapter version whose features
    the head was fitted on; loading it beside another adapter is refused."""

    name = "complaint-head"

    def __init__(self, *, Cs: Sequence[float] = (0.001, 0.003, 0.01, 0.03), folds: int = 5, seed: int = 0,
                 adapter: str = ""):
        self.Cs = tuple(Cs)
        self.folds = folds
        self.seed = seed
        self.adapter = adapter
        self.classes_ = CLASSES
        self.C_: float | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0

    @property
    def version(self) -> str:
        if self.coef_ is None:
            return "unfitted"
        return hashlib.sha256(np.round(self.coef_, 5).tobytes()).hexdigest()[:12]

    def fit(self, features: np.ndarray, labels: Sequence[str]) -> ComplaintHead:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        features = np.asarray(features, dtype=np.float64)
        y = np.array([CLASSES.index(label) for label in labels]) if len(labels) else np.array([], dtype=int)
        if features.ndim != 2 or len(features) != len(y) or len(set(y.tolist())) < 2:
            raise ValueError("need one feature row per label, and both labels (no, yes)")
        # Balanced: the complaint share of the training file is not a brand's.
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, class_weight="balanced"))
        folds = min(self.folds, int(np.bincount(y).min()))
        if folds >= 2 and len(self.Cs) > 1:
            search = GridSearchCV(pipeline, {"logisticregression__C": list(self.Cs)}, scoring="f1_macro",
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=self.seed))
            pipeline = search.fit(features, y).best_estimator_
        else:  # too few examples to choose: the middle strength
            pipeline.set_params(logisticregression__C=self.Cs[len(self.Cs) // 2]).fit(features, y)
        scaler, model = pipeline.named_steps["standardscaler"], pipeline.named_steps["logisticregression"]
        # Folded into one linear map, so inference is a single dot product.
        self.coef_ = model.coef_[0] / scaler.scale_
        self.intercept_ = float(model.intercept_[0] - self.coef_ @ scaler.mean_)
        self.C_ = float(model.C)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise ComplaintHeadError("the complaint head is not fitted")
        # In float64: float32 sums over thousands of columns move with how rows are batched.
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.coef_):
            raise ValueError(f"expected features of shape (n, {len(self.coef_)}), got {features.shape}")
        logits = features @ self.coef_ + self.intercept_
        yes = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        return np.column_stack([1.0 - yes, yes])

    def predict(self, features: np.ndarray) -> list[str]:
        return [CLASSES[int(p >= 0.5)] for p in self.predict_proba(features)[:, 1]]

    # -- persistence --------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        if self.coef_ is None:
            raise ComplaintHeadError("nothing to save: fit the head first")
        data = {"format": FORMAT, "adapter": self.adapter, "C": self.C_, "classes": list(CLASSES),
                "coef": [float(c) for c in np.round(self.coef_, 7)], "intercept": round(self.intercept_, 7)}
        return write_model_file(Path(path), data)

    @classmethod
    def load(cls, path: Path | str) -> ComplaintHead:
        path = Path(path)
        try:
            data = read_model_file(path, FORMAT)
            if data["classes"] != list(CLASSES):
                raise ValueError(f"classes {data['classes']}, expected {list(CLASSES)}")
            head = cls(adapter=str(data["adapter"]))
            head.coef_ = np.asarray(data["coef"], dtype=np.float64)
            if head.coef_.ndim != 1 or not len(head.coef_) or not np.isfinite(head.coef_).all():
                raise ValueError("coefficients are not one finite row")
            head.intercept_, head.C_ = float(data["intercept"]), data["C"]
        except FileNotFoundError:
            raise ComplaintHeadError(f"{path}: complaint head file not found") from None
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ComplaintHeadError(f"{path}: not a valid complaint head file ({exc})") from None
        return head
