"""Portfolio construction per rebalance, 500 symbols: ``PortfolioConstructor.construct`` vs PyPortfolioOpt.

Synthetic per-bar returns with a 5-factor structure (``--lookback`` rows used), a fresh random
score vector each rebalance, ``prev_weights`` = the previous rebalance's weights.  Each method
runs ``--warmup`` rebalances (the first compiles the cvxpy problem) and then ``--rebalances``
timed ones; the clock covers the whole ``construct`` call (universe, Ledoit-Wolf, solve, checks,
vol target).  The headline is ``mean_variance`` long-short with a turnover penalty.  The peer
is PyPortfolioOpt ``EfficientFrontier(...).max_quadratic_utility`` on the same mu and Sigma
(same box and gross constraints, market neutral), which builds and compiles its problem each
time, as its API does.

    .venv/bin/python bench/portfolio.py [--symbols 500] [--lookback 60] [--rebalances 200] [--peer-rebalances 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinywindow.cli._tables import table
from tinywindow.portfolio import ConstructionConfig, PortfolioConstructor, covariance, grinold_alpha

GOAL_MS = 50.0


def synthetic_returns(n: int, t: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0, 0.01, (t, 5))
    loadings = rng.normal(0.6, 0.4, (5, n))
    return factors @ loadings + rng.normal(0, 1, (t, n)) * rng.uniform(0.008, 0.03, n)


def config(method: str, long_only: bool, turnover_penalty: float) -> ConstructionConfig:
    if long_only:
        return ConstructionConfig(method=method, long_only=True, gross=1.0, net_min=0.0, net_max=1.0,  # type: ignore[arg-type]
                                  max_weight=0.02, turnover_penalty=turnover_penalty)
    return ConstructionConfig(method=method, long_only=False, gross=2.0, net_min=-0.05, net_max=0.05,  # type: ignore[arg-type]
                              max_weight=0.02, turnover_penalty=turnover_penalty)


def time_construct(cfg: ConstructionConfig, returns: np.ndarray, rebalances: int, warmup: int) -> dict[str, Any]:
    n = returns.shape[1]
    rng = np.random.default_rng(11)
    pc = PortfolioConstructor(cfg)
    prev = np.zeros(n)
    ms: list[float] = []
    statuses: set[str] = set()
    for i in range(warmup + rebalances):
        scores = rng.normal(size=n)
        t0 = time.perf_counter()
        c = pc.construct(scores, returns, prev)
        took = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            ms.append(took)
            statuses.add(c.status)
        prev = c.weights
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "status": "/".join(sorted(statuses))}


def time_pypfopt(returns: np.ndarray, rebalances: int) -> dict[str, Any]:
    import cvxpy as cp
    from pypfopt import EfficientFrontier

    n = returns.shape[1]
    rng = np.random.default_rng(11)
    sigma = covariance(returns)
    vol = np.sqrt(np.diag(sigma))
    ms: list[float] = []
    for _ in range(rebalances):
        mu = grinold_alpha(rng.normal(size=n), vol, 0.05)
        t0 = time.perf_counter()
        ef = EfficientFrontier(mu, sigma, weight_bounds=(-0.02, 0.02), solver="CLARABEL")
        ef.add_constraint(lambda w: cp.norm1(w) <= 2.0)
        ef.max_quadratic_utility(risk_aversion=1.0, market_neutral=True)
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "status": "optimal"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--lookback", type=int, default=60)
    ap.add_argument("--rebalances", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--peer-rebalances", type=int, default=20, help="PyPortfolioOpt rebuilds its problem each time")
    args = ap.parse_args()

    returns = synthetic_returns(args.symbols, args.lookback)
    cases = [("mean_variance", False, 1e-3), ("mean_variance", True, 1e-3), ("mean_variance", False, 0.0),
             ("risk_parity", True, 0.0), ("risk_parity", False, 1e-3),
             ("score_tilt", True, 0.0), ("score_tilt", False, 1e-3)]
    results: dict[tuple[str, bool, float], dict[str, Any]] = {}
    for method, long_only, tp in cases:
        results[(method, long_only, tp)] = time_construct(
            config(method, long_only, tp), returns, args.rebalances, args.warmup)
    peer = time_pypfopt(returns, args.peer_rebalances)

    rows = [["PortfolioConstructor.construct", m, "long-only" if lo else "long-short", tp, r["status"],
             round(r["p50"], 2), round(r["p99"], 2)] for (m, lo, tp), r in results.items()]
    rows.append(["pypfopt EfficientFrontier.max_quadratic_utility", "mean_variance", "long-short", 0.0,
                 peer["status"], round(peer["p50"], 2), round(peer["p99"], 2)])
    head = results[("mean_variance", False, 1e-3)]
    print(f"portfolio construction: {args.symbols} symbols, lookback {args.lookback}, "
          f"{args.rebalances} rebalances after {args.warmup} warm-up ({args.peer_rebalances} for the peer), "
          f"{os.cpu_count()} CPUs, solver CLARABEL; goal < {GOAL_MS:g} ms per rebalance")
    print(table(rows, ["code path", "method", "book", "turnover pen.", "status", "p50 ms", "p99 ms"]))
    met = head["p99"] < GOAL_MS
    print(f"\nheadline (mean_variance, long-short, turnover penalty): p50 {head['p50']:.1f} ms, "
          f"p99 {head['p99']:.1f} ms; goal < {GOAL_MS:g} ms {'met' if met else 'NOT met'} (p99); "
          f"vs pypfopt p50 {peer['p50']:.0f} ms: {peer['p50'] / head['p50']:.1f}x")
    out: dict[str, Any] = {
        "construct_p50_ms": round(head["p50"], 2),
        "construct_p99_ms": round(head["p99"], 2),
    }
    for method in ("mean_variance", "risk_parity", "score_tilt"):
        out[f"{method}_long_only_p99_ms"] = round(results[(method, True, 1e-3 if method == "mean_variance" else 0.0)]["p99"], 2)
        out[f"{method}_long_short_p99_ms"] = round(results[(method, False, 1e-3)]["p99"], 2)
    out.update({"pypfopt_p50_ms": round(peer["p50"], 2), "pypfopt_p99_ms": round(peer["p99"], 2),
                "symbols": args.symbols, "lookback": args.lookback, "goal_ms": GOAL_MS, "met": met})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
