"""coupler's benchmarks: named workloads, a runner that records JSON lines, and a report.

Kept apart from the tests (they time things). See ``benchmarks/README.md``::

    python -m benchmarks --tier monthly,half-year --seeds 0,1 --baselines pulp-cbc,highs-mip
    python -m benchmarks report
"""
