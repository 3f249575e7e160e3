"""Event store persistence (SQLite file or in memory), both with the audit hash chain."""

from rfr.infrastructure.persistence.environment import application_env

__all__ = ["application_env"]
