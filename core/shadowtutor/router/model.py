"""Training a router with scikit-learn, and its stored form.

The learning is scikit-learn's (a well-kept library, not hand-written learning): a
``HashingVectorizer`` over :func:`shadowtutor.router.features.request_text` and a
``LogisticRegression`` (fit by log loss, a proper scoring rule, so its probabilities are
calibrated in the large; the threshold's guarantee does not lean on calibration). Examples
carry weights: a human review weighs 1, a judge verdict its down-weight (see
:mod:`shadowtutor.router.labels`).

The stored form is data, never a pickle: the non-zero weights (columns and values), the
intercept and the number of hashed columns, in NumPy's ``.npz`` (no object arrays, loaded
with ``allow_pickle=False``), so a row read from the database can never run code.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from shadowtutor.errors import ShadowTutorError
from shadowtutor.router.features import FEATURES_VERSION, N_FEATURES, TOKEN, Scorer

C = 1.0  # inverse regularisation strength of the logistic model


class RouterModelError(ShadowTutorError, ValueError):
    """A router cannot be trained or read; the message says why."""


def vectorizer(n_features: int = N_FEATURES) -> HashingVectorizer:
    return HashingVectorizer(
        n_features=n_features,
        token_pattern=TOKEN.pattern,
        lowercase=True,
        alternate_sign=True,
        norm="l2",
    )


@dataclass(frozen=True)
class Example:
    text: str  # features.request_text of the request
    acceptable: bool
    weight: float = 1.0
    # features.validator_text of the request and the student's answer ("": no answer to read,
    # the student failed: a cascade never serves it)
    answer_text: str = ""

    def as_validator(self) -> Example:
        """This example as the validator learns it (the request and the answer)."""
        return Example(self.answer_text, self.acceptable, self.weight, self.answer_text)


def fit(examples: Sequence[Example], *, n_features: int = N_FEATURES) -> Scorer:
    """A logistic model over the examples' hashed text; both labels must be present."""
    labels = {e.acceptable for e in examples}
    if len(labels) < 2:
        raise RouterModelError(
            "the router needs acceptable and unacceptable examples to learn from; "
            f"the {len(examples)} labelled pairs are all "
            f"{'acceptable' if True in labels else 'unacceptable'}"
        )
    x = vectorizer(n_features).transform([e.text for e in examples])
    y = np.array([1 if e.acceptable else 0 for e in examples])
    w = np.array([e.weight for e in examples], dtype=float)
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit(x, y, sample_weight=w)
    coef = model.coef_[0]
    nz = np.flatnonzero(coef)
    return Scorer(
        weights=dict(zip(nz.tolist(), coef[nz].tolist(), strict=True)),
        intercept=float(model.intercept_[0]),
        n_features=n_features,
    )


def out_of_fold_scores(examples: Sequence[Example], folds: int = 5, seed: int = 0) -> list[float]:
    """Each example's score by a model that did not learn from it (``folds``-fold cross-fitting,
    scikit-learn's ``StratifiedKFold``): how fresh requests score, where the scores of the
    examples a model learned from run high. The threshold grid is cut from these."""
    from sklearn.model_selection import StratifiedKFold

    x = vectorizer().transform([e.text for e in examples])
    y = np.array([1 if e.acceptable else 0 for e in examples])
    w = np.array([e.weight for e in examples], dtype=float)
    out = np.full(len(examples), np.nan)
    k = min(folds, int(min(y.sum(), len(y) - y.sum())))
    if k < 2:
        return [float("nan")] * len(examples)
    for learn, score in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        if len(set(y[learn].tolist())) < 2:
            continue
        fold = LogisticRegression(C=C, max_iter=1000).fit(
            x[learn], y[learn], sample_weight=w[learn]
        )
        out[score] = fold.predict_proba(x[score])[:, 1]
    return [float(v) for v in out]


def sklearn_scores(scorer: Scorer, texts: Sequence[str]) -> list[float]:
    """The scorer's probabilities computed by scikit-learn (for tests and offline scoring of
    many requests at once)."""
    x = vectorizer(scorer.n_features).transform(list(texts))
    coef = np.zeros(scorer.n_features)
    for i, v in scorer.weights.items():
        coef[i] = v
    margin = x @ coef + scorer.intercept
    return list((1.0 / (1.0 + np.exp(-margin))).tolist())


def _arrays(scorer: Scorer, prefix: str = "") -> dict[str, Any]:
    cols = np.array(sorted(scorer.weights), dtype=np.int64)
    return {
        f"{prefix}columns": cols,
        f"{prefix}weights": np.array([scorer.weights[int(c)] for c in cols], dtype=np.float64),
        f"{prefix}intercept": np.array([scorer.intercept]),
        f"{prefix}n_features": np.array([scorer.n_features], dtype=np.int64),
    }


def dumps(scorer: Scorer, validator: Scorer | None = None) -> bytes:
    """The router (and its cascade's validator, when trained) as one ``.npz``."""
    buf = io.BytesIO()
    arrays = _arrays(scorer) | (_arrays(validator, VALIDATOR) if validator else {})
    np.savez_compressed(
        buf, features_version=np.array([FEATURES_VERSION], dtype=np.int64), **arrays
    )
    return buf.getvalue()


VALIDATOR = "validator_"  # the validator's arrays' prefix in the stored form


def _scorer(z: Any, prefix: str = "") -> Scorer:
    cols, weights = z[f"{prefix}columns"].tolist(), z[f"{prefix}weights"].tolist()
    return Scorer(
        weights=dict(zip(cols, weights, strict=True)),
        intercept=float(z[f"{prefix}intercept"][0]),
        n_features=int(z[f"{prefix}n_features"][0]),
    )


def loads(data: bytes) -> Scorer:
    """The stored router."""
    return loads_both(data)[0]


def loads_both(data: bytes) -> tuple[Scorer, Scorer | None]:
    """The stored router and its validator (None: the version has none)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            made = int(z["features_version"][0]) if "features_version" in z else 0
            if made != FEATURES_VERSION:
                raise RouterModelError(
                    f"it was trained on features version {made}, this ShadowTutor computes "
                    f"version {FEATURES_VERSION}: train a new version (shadowtutor router train)"
                )
            validator = _scorer(z, VALIDATOR) if f"{VALIDATOR}columns" in z else None
            return _scorer(z), validator
    except Exception as exc:
        raise RouterModelError(f"the stored router cannot be used: {exc}") from exc
