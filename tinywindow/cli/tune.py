"""``tinywindow tune --agent lstm --samples N``: an ASHA sweep of one agent's hyperparameters.

The metric is the walk-forward validation Sharpe (the fold before the training hold-out);
the best parameters are printed and stored, encrypted and signed with the keystore (its
passphrase from ``crypto.passphrase_env`` or a prompt), in ``<registry>/<agent>/tuned.json.twenc``,
where the next ``tinywindow agents train`` picks them up.  TensorBoard logs stay under
``agents.tune_dir`` (``tensorboard --logdir <that dir>``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tinywindow.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("tune", help="ASHA hyperparameter sweep of one agent (metric: validation Sharpe)")
    p.add_argument("--agent", required=True, choices=["lstm", "transformer", "xgboost"])
    p.add_argument("--samples", type=int, default=4, help="trials to sample (default 4)")
    p.add_argument("--iterations", type=int, help="PPO iterations per trial (default: agents.train_iterations)")
    p.add_argument("--train-batch", type=int, help="env steps per PPO iteration (default: agents.train_batch)")
    p.add_argument("--rounds", type=int, help="boosting rounds per XGBoost trial (default: agents.xgb_rounds)")
    p.add_argument("--data", default="sp500,nasdaq,goog", help="bundled datasets (comma-separated)")
    p.add_argument("--concurrent", type=int, default=2, help="trials at once (default 2, fits 2 CPUs)")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace, cfg: Config) -> int:
    from actors.runtime import connect
    from actors.training.train import bundled_features
    from actors.tune import sweep
    from tinywindow.cli._storage import state_root
    from tinywindow.cli.keys import read_passphrase
    from tinywindow.crypto import open_keystore

    cfg = state_root(cfg, "tinywindow tune")  # refuses a job's throw-away working directory
    keystore = open_keystore(cfg.crypto, cfg.data_dir, read_passphrase(cfg))  # before any trial
    budget: dict[str, Any] = {}
    if args.iterations:
        budget["iterations"] = args.iterations
    if args.train_batch:
        budget["train_batch"] = args.train_batch
    if args.rounds:
        budget["rounds"] = args.rounds
    connect(cfg)
    features = bundled_features([d.strip() for d in args.data.split(",") if d.strip()])
    result = sweep(
        args.agent, features, cfg, args.samples, budget=budget, max_concurrent=args.concurrent, keystore=keystore
    )
    print(f"{result.trials} trials in {result.seconds:.1f}s; validation fold {result.split['valid_start']}..{result.split['valid_end']}")
    print(f"best validation Sharpe {result.best_sharpe:.3f} with")
    print(json.dumps(result.best_params, indent=2, default=str))
    print(f"stored in {result.tuned_file} (used by the next 'tinywindow agents train')")
    print(f"TensorBoard logs: tensorboard --logdir {result.experiment_dir}")
    return 0
