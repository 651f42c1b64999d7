"""Scores -> target weights under constraints, a pure step between the consensus and orders.

``PortfolioConstructor.construct(scores, returns, prev_weights)`` returns a ``Construction``.
Same inputs, same outputs: every solve is a cold CLARABEL solve with fixed settings (no warm
start, so no hidden state), and the only thing the constructor keeps between calls is the
compiled cvxpy problem per shape.

The steps, for every method:

1. **Universe.** Only the last ``lookback`` return rows are used.  A symbol with a non-finite
   score, fewer than ``min_history`` finite returns in the window or no variance in them is
   *excluded*: weight
   exactly 0, index reported in ``Construction.excluded``.  No symbol left: all zeros, status
   ``"no_views"``.
2. **Risk.** Ledoit-Wolf shrinkage (identical to ``sklearn.covariance.ledoit_wolf``) of the
   included symbols' returns, a symbol's missing returns filled with its own window mean (so
   they add nothing to the centred cross products).  It is kept in factor form,
   ``Sigma = (1-d) Xc'Xc / T + d m I``, never as a dense N x N matrix.
3. **Weights** by the method:

   - ``mean_variance``: maximise ``mu'w - risk_aversion/2 w'Sigma w - turnover_penalty |w - w_prev|_1``
     with ``mu_i = alpha_ic * zscore(score)_i * sigma_i`` (Grinold; per bar), cvxpy + CLARABEL,
     the risk as ``||y||^2`` with ``y = sqrt((1-d)/T) Xc w`` plus ``d m ||w||^2``.
   - ``risk_parity``: equal risk contribution among the included names.  Long-only: Newton's
     method on the convex ``min 1/2 x'Sigma x - 1/n sum log x`` (Spinu), whose optimum has
     ``x_i (Sigma x)_i = 1/n`` for all i.  Long-short: the same on ``S Sigma S`` with ``S`` the
     diagonal of score signs (a score of 0 counts as long), then ``w = S x``, so the *signed*
     book has equal contributions ``w_i (Sigma w)_i``.  ``x`` is scaled to the budget
     (long-only ``min(gross, net_max)``; long-short ``sum |w| = gross``); names above
     ``max_weight`` are capped and the rest scaled up in proportion until the budget is met or
     every name is capped.  If the result breaks the net bounds, or ``turnover_penalty > 0``,
     it is projected (step 4), which gives up exact equality of contributions.
   - ``score_tilt``: the top ``top_fraction`` of names by score held long (long-short: and the
     bottom fraction short), each weighted ``1 + |z_i - z_edge|`` (``z_edge`` the z-score of the
     least extreme held name of its leg), legs scaled to the budget: long-only
     ``min(gross, net_max)``; long-short long ``(gross + n*)/2`` and short ``(gross - n*)/2`` with
     ``n*`` the net bound closest to 0 (dollar-neutral unless the net bounds exclude 0).
     Then projected (step 4) unless it is already feasible and ``turnover_penalty == 0``.

4. **Projection** (score_tilt, risk_parity when needed): ``min ||w - w_target||^2 +
   turnover_penalty |w - w_prev|_1`` subject to the constraints, cvxpy + CLARABEL.
5. **Check.** Solver noise is clipped to the box (sign, ``max_weight``, excluded = 0); then
   gross and net are checked to 1e-6; a violation is an error, never returned.
6. **Vol target.** ``scale = min(1, vol_target / ex_ante_vol)`` scales the whole book down.
   The vol target is a cap on risk and wins over ``net_min``: a scaled book's net lies in
   ``[scale * net_min, scale * net_max]``, and ``Construction.scale`` says by how much.

The constraints are ``gross`` (sum |w|), ``net_min`` <= sum w <= ``net_max``, ``max_weight``
(|w_i|) and ``long_only`` (w_i >= 0).  Infeasible combinations are refused analytically before
any solve, and a solver's ``infeasible`` is mapped to the same ``ConstraintError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from tinywindow.errors import ConfigError, DataError
from tinywindow.portfolio.config import SECTION, ConstructionConfig

SOLVER = "CLARABEL"
SOLVER_OPTIONS: dict[str, Any] = {
    "tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 200,
}
TOLERANCE = 1e-6  # constraints hold to this after the solve
_NEWTON_TOL = 1e-14  # risk parity: stop when the Newton decrement^2 falls below this
_NEWTON_MAX_ITER = 100


class ConstraintError(ConfigError):
    """The constraints cannot all hold: loosen one of the config keys named in ``constraints``."""

    def __init__(self, message: str, constraints: tuple[str, ...]) -> None:
        super().__init__(f"{SECTION}: {message}", key=f"{SECTION}.{constraints[0]}" if constraints else None)
        self.constraints = constraints


@dataclass(frozen=True)
class Construction:
    weights: np.ndarray  # [N] float64, in the order of the symbols given
    method: str
    ex_ante_vol: float  # annualised, of the final weights
    turnover: float  # sum |w - w_prev|
    scale: float  # the vol-target scale applied (1.0 if none)
    excluded: tuple[int, ...]  # indices given weight 0 for lack of history / non-finite score
    status: str  # solver status ("optimal", ...), "closed_form" or "no_views"
    solve_ms: float


@dataclass(frozen=True)
class ShrunkCovariance:
    """``Sigma = (1-shrinkage) Xc'Xc / T + shrinkage * mu * I`` over the columns of ``xc``."""

    xc: np.ndarray  # [T, N] centred returns
    shrinkage: float
    mu: float  # trace(S) / N of the sample covariance S

    def dense(self) -> np.ndarray:
        t, n = self.xc.shape
        return (1 - self.shrinkage) * (self.xc.T @ self.xc) / t + self.shrinkage * self.mu * np.eye(n)

    def factor(self) -> np.ndarray:
        """``F`` with ``Sigma = F'F + ridge I``."""
        return np.sqrt((1 - self.shrinkage) / self.xc.shape[0]) * self.xc

    @property
    def ridge(self) -> float:
        return self.shrinkage * self.mu

    def variance(self, w: np.ndarray) -> float:
        """``w' Sigma w`` without forming Sigma."""
        return float(np.sum((self.factor() @ w) ** 2) + self.ridge * (w @ w))

    def diag(self) -> np.ndarray:
        return (1 - self.shrinkage) * np.mean(self.xc**2, axis=0) + self.ridge


def ledoit_wolf(returns: np.ndarray) -> ShrunkCovariance:
    """Ledoit-Wolf shrinkage as ``sklearn.covariance.ledoit_wolf`` computes it, in O(T^2 N).

    NaNs are filled with their column's mean (a column with no finite value with 0)."""
    x = np.array(returns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"returns must be [T>=2, N]; got shape {x.shape}")
    missing = ~np.isfinite(x)
    if missing.any():
        counts = np.sum(~missing, axis=0)
        means = np.where(counts > 0, np.nansum(np.where(missing, 0.0, x), axis=0) / np.maximum(counts, 1), 0.0)
        x = np.where(missing, means, x)
    t, n = x.shape
    xc = x - x.mean(axis=0)
    sq = xc**2
    trace_s = float(sq.sum()) / t  # trace of S = Xc'Xc / T
    mu = trace_s / n
    gram = xc @ xc.T  # [T, T]: ||Xc'Xc||_F^2 = ||Xc Xc'||_F^2
    delta_ = float(np.sum(gram**2)) / t**2
    beta_ = float(np.sum(sq.sum(axis=1) ** 2))
    beta = (beta_ / t - delta_) / (n * t)
    delta = (delta_ - 2 * mu * trace_s + n * mu**2) / n
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    return ShrunkCovariance(xc=xc, shrinkage=shrinkage, mu=mu)


def returns_from_closes(closes: Sequence[Mapping[str, float]], symbols: Sequence[str]) -> np.ndarray:
    """[T-1, N] simple close-to-close returns of ``symbols`` from T bars of closes (symbol ->
    close, oldest first); NaN where either close is missing."""
    if len(closes) < 2:
        return np.zeros((0, len(symbols)))
    c = pd.DataFrame.from_records(list(closes), columns=list(symbols)).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = c[1:] / c[:-1] - 1.0
    return out


def covariance(returns: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance of ``returns`` [T, N] as a dense [N, N] matrix, per bar."""
    return ledoit_wolf(returns).dense()


def zscore(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score (population std); all zeros when the scores do not vary."""
    sd = float(np.std(x))
    return np.zeros_like(x) if sd == 0 or not np.isfinite(sd) else (x - np.mean(x)) / sd


def grinold_alpha(scores: np.ndarray, vol: np.ndarray, alpha_ic: float) -> np.ndarray:
    """Expected return per bar ``alpha_ic * zscore(score) * sigma`` (Grinold's rule of thumb)."""
    return alpha_ic * zscore(scores) * vol


class _Problem:
    """One compiled cvxpy problem per shape: ``min objective`` over the constraint set.

    Box ``lb <= w <= ub`` (sign, max_weight, excluded = 0) and ``w_prev`` are Parameters; gross,
    net and the turnover penalty are constants of the config the constructor owns."""

    def __init__(
        self,
        cfg: ConstructionConfig,
        n: int,
        objective: Callable[[cp.Variable], cp.Expression],
        extra: Callable[[cp.Variable], list[cp.Constraint]] | None = None,
    ) -> None:
        self.w = cp.Variable(n)
        self.lb = cp.Parameter(n)
        self.ub = cp.Parameter(n)
        self.prev = cp.Parameter(n)
        w = self.w
        cons = [w >= self.lb, w <= self.ub, cp.sum(w) >= cfg.net_min, cp.sum(w) <= cfg.net_max]
        cons.append(cp.sum(w) <= cfg.gross if cfg.long_only else cp.norm1(w) <= cfg.gross)
        if extra is not None:
            cons += extra(w)
        obj = objective(w)
        if cfg.turnover_penalty > 0:  # u >= |w - w_prev|, so the product with c stays DPP
            u = cp.Variable(n)
            cons += [u >= w - self.prev, u >= self.prev - w]
            obj = obj + cfg.turnover_penalty * self.scale_param() * cp.sum(u)
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        assert self.problem.is_dpp()  # parameters re-bind without recompiling

    def scale_param(self) -> cp.Parameter:
        if not hasattr(self, "_scale"):
            self._scale = cp.Parameter(nonneg=True, value=1.0)
        return self._scale

    def solve(self) -> tuple[np.ndarray | None, str]:
        self.problem.solve(solver=SOLVER, warm_start=False, **SOLVER_OPTIONS)
        value = self.w.value
        return (None if value is None else np.asarray(value, dtype=np.float64)), str(self.problem.status)


class _MeanVariance(_Problem):
    """``min c(-mu'w + lam/2 (||F w||^2 + ridge ||w||^2) + tp |w - w_prev|_1)``, ``y = F w`` explicit.

    ``c`` (``scale_param``) normalises the objective to O(1) so solver tolerances mean the same
    whatever the units of the returns; it does not change the minimiser."""

    def __init__(self, cfg: ConstructionConfig, n: int, t: int) -> None:
        self.mu = cp.Parameter(n)
        self.f = cp.Parameter((t, n))
        self.ridge = cp.Parameter(nonneg=True)
        self.y = cp.Variable(t)
        lam = cfg.risk_aversion

        def objective(w: cp.Variable) -> cp.Expression:
            return -self.mu @ w + lam / 2 * (cp.sum_squares(self.y) + self.ridge * cp.sum_squares(w))

        super().__init__(cfg, n, objective, lambda w: [self.y == self.f @ w])


class _Projection(_Problem):
    """``min c(||w - target||^2 + tp |w - w_prev|_1)`` over the constraint set, ``c`` the
    objective normaliser (``1 / ||target||^2``)."""

    def __init__(self, cfg: ConstructionConfig, n: int) -> None:
        self.target = cp.Parameter(n)
        self.gap = cp.Variable(n)  # w - target, so the product with c stays DPP
        super().__init__(cfg, n, lambda w: self.scale_param() * cp.sum_squares(self.gap),
                         lambda w: [self.gap == w - self.target])


class PortfolioConstructor:
    """Turns one bar's scores into target weights (see the module docstring for the steps)."""

    def __init__(self, cfg: ConstructionConfig) -> None:
        self.cfg = cfg
        self._problems: dict[tuple[str, int, int], _Problem] = {}

    def construct(
        self, scores: np.ndarray, returns: np.ndarray, prev_weights: np.ndarray | None = None
    ) -> Construction:
        """scores [N] (NaN = no view -> weight 0), returns [T, N] simple per-bar returns, oldest
        first, NaN allowed (missing); only the last ``lookback`` rows are used."""
        t0 = time.perf_counter()
        cfg = self.cfg
        s = np.asarray(scores, dtype=np.float64)
        r = np.asarray(returns, dtype=np.float64)
        if s.ndim != 1 or r.ndim != 2 or r.shape[1] != s.shape[0]:
            raise ValueError(f"scores must be [N] and returns [T, N]; got {s.shape} and {r.shape}")
        n = s.shape[0]
        prev = np.zeros(n) if prev_weights is None else np.asarray(prev_weights, dtype=np.float64)
        if prev.shape != (n,) or not np.all(np.isfinite(prev)):
            raise ValueError(f"prev_weights must be [N] finite; got shape {prev.shape}")
        if np.isinf(r).any():
            row, col = np.argwhere(np.isinf(r))[0]
            raise DataError("infinite return", source="portfolio.construct", row=int(row), column=str(col))
        if cfg.method == "none":
            raise ConfigError(f"{SECTION}.method is 'none': sizing is per symbol, not here",
                              key=f"{SECTION}.method")
        window = r[-cfg.lookback:]
        finite = np.isfinite(window)
        count = finite.sum(axis=0)
        mean = np.where(finite, window, 0.0).sum(axis=0) / np.maximum(count, 1)
        var = (np.where(finite, window - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
        # a name whose price never moved in the window has no risk estimate: no weight
        view = np.isfinite(s) & (count >= cfg.min_history) & (var > 0)
        excluded = tuple(int(i) for i in np.flatnonzero(~view))
        idx = np.flatnonzero(view)
        if idx.size == 0:
            return Construction(np.zeros(n), cfg.method, 0.0, float(np.abs(prev).sum()), 1.0, excluded,
                                "no_views", (time.perf_counter() - t0) * 1e3)
        _check_feasible(cfg, idx.size)
        lw = ledoit_wolf(window[:, idx])
        full = ShrunkCovariance(np.zeros((window.shape[0], n)), lw.shrinkage, lw.mu)
        full.xc[:, idx] = lw.xc  # excluded columns 0: they hold no weight
        ub = np.where(view, cfg.max_weight, 0.0)
        lb = np.zeros(n) if cfg.long_only else -ub
        if cfg.method == "mean_variance":
            vol = np.zeros(n)
            vol[idx] = np.sqrt(lw.diag())
            mu = np.zeros(n)
            mu[idx] = grinold_alpha(s[idx], vol[idx], cfg.alpha_ic)
            w, status = self._mean_variance(full, mu, lb, ub, prev)
        elif cfg.method == "risk_parity":
            target = np.zeros(n)
            target[idx] = self._risk_parity_target(lw, s[idx])
            w, status = self._project(target, lb, ub, prev)
        else:
            target = np.zeros(n)
            target[idx] = self._score_tilt_target(s[idx])
            w, status = self._project(target, lb, ub, prev)
        w = _checked(cfg, w, lb, ub)
        vol_ann = float(np.sqrt(max(full.variance(w), 0.0) * cfg.annualization))
        scale = 1.0
        if cfg.vol_target is not None and vol_ann > cfg.vol_target:
            scale = cfg.vol_target / vol_ann
            w = w * scale
            vol_ann = float(np.sqrt(max(full.variance(w), 0.0) * cfg.annualization))
        return Construction(w, cfg.method, vol_ann, float(np.abs(w - prev).sum()), scale, excluded, status,
                            (time.perf_counter() - t0) * 1e3)

    # -- methods -------------------------------------------------------------------------------

    def _mean_variance(
        self, cov: ShrunkCovariance, mu: np.ndarray, lb: np.ndarray, ub: np.ndarray, prev: np.ndarray
    ) -> tuple[np.ndarray, str]:
        t, n = cov.xc.shape
        key = ("mean_variance", n, t)
        if key not in self._problems:
            self._problems[key] = _MeanVariance(self.cfg, n, t)
        p = self._problems[key]
        assert isinstance(p, _MeanVariance)
        c = 1.0 / (self.cfg.risk_aversion * max(cov.mu, 1e-300))  # objective normaliser
        p.mu.value = c * mu
        p.f.value = np.sqrt(c) * cov.factor()
        p.ridge.value = c * cov.ridge
        p.scale_param().value = c
        return self._solve(p, lb, ub, prev)

    def _project(
        self, target: np.ndarray, lb: np.ndarray, ub: np.ndarray, prev: np.ndarray
    ) -> tuple[np.ndarray, str]:
        if self.cfg.turnover_penalty == 0 and _violation(self.cfg, target, lb, ub) <= 1e-12:
            return target, "closed_form"
        key = ("projection", target.shape[0], 0)
        if key not in self._problems:
            self._problems[key] = _Projection(self.cfg, target.shape[0])
        p = self._problems[key]
        assert isinstance(p, _Projection)
        p.target.value = target
        p.scale_param().value = 1.0 / max(float(target @ target), 1e-12)
        return self._solve(p, lb, ub, prev)

    def _solve(self, p: _Problem, lb: np.ndarray, ub: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, str]:
        p.lb.value, p.ub.value, p.prev.value = lb, ub, prev
        w, status = p.solve()
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            keys = _constraint_keys(self.cfg)
            raise ConstraintError(f"infeasible (solver {SOLVER}: {status}) under {', '.join(keys)}", keys)
        if w is None or status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            keys = _constraint_keys(self.cfg)
            raise ConstraintError(f"no solution (solver {SOLVER}: {status}) under {', '.join(keys)}", keys)
        return w, status

    def _risk_parity_target(self, cov: ShrunkCovariance, scores: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        sign = np.ones_like(scores) if cfg.long_only else np.where(scores < 0, -1.0, 1.0)
        x = equal_risk_contribution(cov.factor() * sign, cov.ridge)
        budget = min(cfg.gross, cfg.net_max) if cfg.long_only else cfg.gross
        return sign * _capped(x, budget, cfg.max_weight)

    def _score_tilt_target(self, scores: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        n = scores.shape[0]
        z = zscore(scores)
        order = np.argsort(-scores, kind="stable")  # best first; ties by index
        k = max(1, int(np.floor(cfg.top_fraction * n + 0.5)))
        target = np.zeros(n)
        top = order[:k]
        if cfg.long_only:
            long_budget, short_budget = min(cfg.gross, cfg.net_max), 0.0
        else:
            net = min(max(0.0, cfg.net_min), cfg.net_max)
            long_budget, short_budget = (cfg.gross + net) / 2, (cfg.gross - net) / 2
        tilt = 1.0 + (z[top] - z[top].min())
        target[top] = long_budget * tilt / tilt.sum()
        k_short = min(k, n - k)
        if short_budget > 0 and k_short > 0:
            bottom = order[n - k_short:]
            tilt = 1.0 + (z[bottom].max() - z[bottom])
            target[bottom] = -short_budget * tilt / tilt.sum()
        return target


def equal_risk_contribution(f: np.ndarray, ridge: float) -> np.ndarray:
    """``x > 0`` with ``x_i (Sigma x)_i = 1/n`` for ``Sigma = F'F + ridge I`` (F [T, n]).

    Newton's method on ``1/2 x'Sigma x - 1/n sum log x`` with a backtracking line search; the
    Hessian ``F'F + D`` is inverted through Woodbury in O(T^2 n)."""
    t, n = f.shape
    b = 1.0 / n

    def sigma_x(x: np.ndarray) -> np.ndarray:
        return f.T @ (f @ x) + ridge * x

    def objective(x: np.ndarray) -> float:
        return float(0.5 * x @ sigma_x(x) - b * np.sum(np.log(x)))

    diag = np.sum(f**2, axis=0) + ridge
    if np.any(diag <= 0):
        raise DataError("risk parity needs every included name to have positive variance",
                        source="portfolio.construct", column=str(int(np.argmin(diag))))
    x = 1.0 / np.sqrt(diag)
    x /= np.sqrt(x @ sigma_x(x))  # the optimum has x'Sigma x = n b = 1
    fx = objective(x)
    for _ in range(_NEWTON_MAX_ITER):
        g = sigma_x(x) - b / x
        d_inv = 1.0 / (ridge + b / x**2)
        inner = np.eye(t) + (f * d_inv) @ f.T
        step = -(d_inv * g - d_inv * (f.T @ np.linalg.solve(inner, f @ (d_inv * g))))
        decrement = float(-g @ step)
        if decrement < _NEWTON_TOL:
            break
        neg = step < 0
        alpha = min(1.0, 0.99 * float(np.min(-x[neg] / step[neg]))) if neg.any() else 1.0
        while True:
            cand = x + alpha * step
            fc = objective(cand)
            if fc <= fx - 0.25 * alpha * decrement or alpha < 1e-12:
                break
            alpha *= 0.5
        x, fx = cand, fc
    return x


def _capped(x: np.ndarray, budget: float, cap: float) -> np.ndarray:
    """``x`` scaled to sum to ``budget``, names above ``cap`` capped and the rest scaled up in
    proportion (water-filling) until the budget is met or every name is capped."""
    w = np.zeros_like(x)
    free = np.ones(x.shape[0], dtype=bool)
    while free.any():
        left = budget - cap * np.sum(~free)
        w[free] = left * x[free] / x[free].sum()
        over = free & (w > cap)
        if not over.any():
            break
        w[over] = cap
        free &= ~over
    w[~free] = cap
    return w


def _check_feasible(cfg: ConstructionConfig, n_view: int) -> None:
    """Refuse, before any solve, constraints no book of ``n_view`` names can meet."""
    reach = min(cfg.gross, cfg.max_weight * n_view)  # the largest |net| the box and gross allow
    if cfg.net_min > reach + TOLERANCE:
        keys = ("long_only", "max_weight", "net_min") if cfg.long_only else ("max_weight", "net_min")
        raise ConstraintError(
            f"infeasible: {'long_only with ' if cfg.long_only else ''}max_weight {cfg.max_weight:g} x "
            f"{n_view} names = {cfg.max_weight * n_view:.2f} < net_min {cfg.net_min:g}", keys)
    if cfg.net_max < -reach - TOLERANCE:
        raise ConstraintError(
            f"infeasible: max_weight {cfg.max_weight:g} x {n_view} names = {cfg.max_weight * n_view:.2f} "
            f"< -net_max {-cfg.net_max:g}", ("max_weight", "net_max"))


def _constraint_keys(cfg: ConstructionConfig) -> tuple[str, ...]:
    keys = ("gross", "net_min", "net_max", "max_weight")
    return (*keys, "long_only") if cfg.long_only else keys


def _violation(cfg: ConstructionConfig, w: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> float:
    """The largest amount by which ``w`` breaks a constraint (0 when it meets them all)."""
    net = float(w.sum())
    return max(
        0.0,
        float(np.max(lb - w, initial=0.0)),
        float(np.max(w - ub, initial=0.0)),
        float(np.abs(w).sum()) - cfg.gross,
        cfg.net_min - net,
        net - cfg.net_max,
    )


def _checked(cfg: ConstructionConfig, w: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Clip solver noise to the box, then refuse any constraint still broken by more than 1e-6."""
    if np.max(lb - w, initial=0.0) > TOLERANCE or np.max(w - ub, initial=0.0) > TOLERANCE:
        raise ConstraintError("solver returned weights outside max_weight / sign bounds by more than "
                              f"{TOLERANCE:g}", ("max_weight", "long_only") if cfg.long_only else ("max_weight",))
    w = np.clip(w, lb, ub)
    w[ub == 0] = 0.0  # excluded: exactly zero
    net, gross = float(w.sum()), float(np.abs(w).sum())
    broken = [key for key, bad in (("gross", gross > cfg.gross + TOLERANCE),
                                   ("net_min", net < cfg.net_min - TOLERANCE),
                                   ("net_max", net > cfg.net_max + TOLERANCE)) if bad]
    if broken:
        raise ConstraintError(f"solver returned weights breaking {', '.join(broken)} "
                              f"(gross {gross:.9f}, net {net:.9f})", tuple(broken))
    return w
