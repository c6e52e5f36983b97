"""Alembic migrations of the service's schema (event log, projections)."""
