"""Load tests: locust scenarios for the API and burst benchmarks for the pollers (not pytest tests)."""
