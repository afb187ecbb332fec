"""Blocks of rows: work through a households x municipalities matrix a slab at a time.

A temporary of a whole matrix costs 8 bytes per pair (about 290 MB for 200,000 persons); one
block of ``BLOCK_PAIRS`` pairs costs 32 MB. Row-wise operations (a sum, an argmax or an
argpartition along a row) give the same numbers block by block as on the whole matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Pairs per block (32 MB per float64 temporary).
BLOCK_PAIRS = 2**22


def row_blocks(n_rows: int, n_cols: int, pairs: int | None = None) -> Iterator[slice]:
    """Consecutive slices of ``range(n_rows)`` of at most ``pairs`` (default ``BLOCK_PAIRS``)
    pairs each, and at least one row each."""
    step = max(1, (BLOCK_PAIRS if pairs is None else pairs) // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))
