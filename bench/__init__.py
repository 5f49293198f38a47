"""`make bench`: TrustGate's cold start, request cost, lifecycle cost and trust-policy capacity, each beside a
baseline measured in the same run on the same machine. `python -m bench --help` lists the options.

Every measure lives in its own module and returns `Row`s (see `bench.results`); `bench.__main__` runs them,
prints one table and writes the same rows as JSON. Goals missed are reported, never raised: only a broken
harness makes the run fail.
"""
