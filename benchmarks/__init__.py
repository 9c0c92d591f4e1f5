"""Benchmarks: run by hand, never by the test suite (their figures depend on the machine)."""
