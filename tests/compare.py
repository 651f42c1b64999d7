"""Comparing model outputs computed in different shapes, orders or thread counts.

Such outputs are equal only within floating-point tolerance: a batch of 7 windows and a batch
of 4,096 take different SIMD paths (seen: 3e-8 apart on an AVX-512 CPU).  "Batching does not
change a vote" therefore means the same rows and actions, and confidences within 1e-6.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

CONFIDENCE_ATOL = 1e-6


def assert_votes_match(actual: pa.Table, expected: pa.Table, atol: float = CONFIDENCE_ATOL) -> None:
    """Same schema, same keys and actions in the same order, confidences within ``atol``."""
    assert actual.schema.equals(expected.schema), (actual.schema, expected.schema)
    assert actual.num_rows == expected.num_rows
    for name in actual.column_names:
        if name == "confidence":
            np.testing.assert_allclose(actual.column(name).to_numpy(), expected.column(name).to_numpy(),
                                       rtol=0, atol=atol)
        else:
            assert actual.column(name).equals(expected.column(name)), name
