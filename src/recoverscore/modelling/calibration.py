"""Calibration maps: raw model probabilities in, probabilities that mean what they say out.

The expected-value policy multiplies probabilities by money, so a model that ranks well but says
0.4 where 0.3 happens would misprice every tier. A calibration map is fitted on predictions the
booster did not train on (a holdout, or out-of-fold predictions on small files) and saved as
plain numbers: isotonic steps or Platt's two coefficients, chosen by cross-validated log loss.
Both are non-decreasing, so calibrating never reorders debtors.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

METHODS = ("isotonic", "platt")
_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def fit_calibration(method: str, raw: np.ndarray, y: np.ndarray) -> dict:
    """A calibration map as plain JSON-able numbers (``method`` "none" is the identity)."""
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {
            "method": "isotonic",
            "x": iso.X_thresholds_.tolist(),
            "y": iso.y_thresholds_.tolist(),
        }
    if method == "platt":
        lr = LogisticRegression(C=1e6).fit(logit(raw).reshape(-1, 1), y)
        return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    return {"method": "none"}


def apply_calibration(calibration: dict, raw: np.ndarray) -> np.ndarray:
    """Map raw probabilities through a fitted calibration; monotone non-decreasing."""
    method = calibration["method"]
    if method == "isotonic":
        return np.interp(raw, calibration["x"], calibration["y"])
    if method == "platt":
        return 1.0 / (1.0 + np.exp(-(calibration["a"] * logit(raw) + calibration["b"])))
    return np.asarray(raw, dtype=float)


def choose_calibration(raw: np.ndarray, y: np.ndarray, seed: int) -> tuple[str, dict]:
    """Isotonic or Platt, whichever has the lower 2-fold cross-validated log loss."""
    losses = {}
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for method in METHODS:
        pred = np.empty_like(raw)
        for fit_idx, eval_idx in folds.split(raw, y):
            cal = fit_calibration(method, raw[fit_idx], y[fit_idx])
            pred[eval_idx] = apply_calibration(cal, raw[eval_idx])
        losses[method] = log_loss(y, np.clip(pred, _EPS, 1 - _EPS), labels=[0, 1])
    return min(losses, key=losses.get), losses
