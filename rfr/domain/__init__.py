"""Aggregates, events, value objects and policy rules. Pure Python, eventsourcing and attrs only."""
