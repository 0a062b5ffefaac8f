"""The engine's distinct values of an integer array are NumPy's (``np.unique``), whatever the dtype and range."""

from __future__ import annotations

import numpy as np
import pytest

from hub.dedupe.arrays import distinct


@pytest.mark.parametrize("values", [
    np.array([], dtype=np.int64), np.array([7], dtype=np.int32), np.array([3, 1, 3, 2, 1], dtype=np.int8),
    np.random.default_rng(1).integers(-50, 50, 2000), np.random.default_rng(2).integers(0, 10**15, 5000),
    np.random.default_rng(3).integers(0, 9, 3000).astype(np.uint64), np.array([True, False, True]),
    np.array(["b", "a", "b"], dtype=object),
])
def test_distinct_is_numpys_unique(values: np.ndarray) -> None:
    got, want = distinct(values), np.unique(values)
    assert np.array_equal(got, want) and got.dtype == want.dtype
