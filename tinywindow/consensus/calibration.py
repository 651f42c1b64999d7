"""Per-agent calibration of directional confidence, learned from the agent's own outcomes.

An agent's directional vote says "my direction is right with probability p" (``p`` from
``voting.directional_probability``).  Its realized hit rate at that ``p`` is what the vote
is worth: ``fit_calibration`` fits an isotonic (monotone) map from ``p`` to the observed
hit rate (sklearn ``IsotonicRegression(out_of_bounds="clip")``), so an agent that says 0.9
and is right 55% of the time is read as 0.55.  A ``Calibration`` is only its fitted points:
``np.interp`` between them, clipped at the ends (what the isotonic model predicts), so the
journaled points reproduce the map exactly on replay; the sklearn model itself is never
kept or journaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibration", "fit_calibration"]


@dataclass(frozen=True)
class Calibration:
    """A monotone map of raw directional probability -> calibrated probability."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    samples: int = 0  # outcomes it was fitted on

    def __call__(self, p: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(p, dtype=np.float64), self.x, self.y)


def fit_calibration(p: np.ndarray, hit: np.ndarray) -> Calibration:
    """Isotonic fit of ``hit`` (0/1) on ``p`` (raw directional probability, in [0, 1])."""
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(p, dtype=np.float64)
    h = np.asarray(hit, dtype=np.float64)
    if x.size == 0 or x.shape != h.shape:
        raise ValueError("calibration needs as many hits as probabilities, at least one")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, h)
    xs = tuple(float(v) for v in iso.X_thresholds_)
    ys = tuple(float(v) for v in iso.y_thresholds_)
    return Calibration(xs, ys, int(x.size))
