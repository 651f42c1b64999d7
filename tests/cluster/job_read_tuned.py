"""A job for tests/cluster/test_job_state.py: read what an earlier job stored under the shared
storage root given as the only argument (the passphrase comes from the environment `ray start`
ran with, as on a real cluster)."""

from __future__ import annotations

import json
import sys

from tinywindow.config import load
from tinywindow.crypto import open_keystore
from tinywindow.models.params import read_tuned_file, tuned_path
from tinywindow.models.registry import registry_root


def main(data_dir: str) -> None:
    cfg = load(overrides=[f"data_dir={data_dir}"])
    root = registry_root(cfg.agents, cfg.data_dir)
    stored = read_tuned_file(root, "xgboost", open_keystore(cfg.crypto, cfg.data_dir))  # verified, decrypted
    print("RESULT " + json.dumps({"file": str(tuned_path(root, "xgboost")), "params": stored["params"],
                                  "experiment": stored.get("experiment")}))


if __name__ == "__main__":
    main(sys.argv[1])
