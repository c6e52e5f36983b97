"""Helpers shared by the test suites (databases, a running service, RWI clients)."""
