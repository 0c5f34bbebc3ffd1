"""``make benchmark``: profiles, runner and report writer (results in ``benchmarks/results``)."""
