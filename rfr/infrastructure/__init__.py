"""Wiring and technical plumbing: settings, persistence, model building, crypto."""
