"""Retrospective facial recognition: governance core and biometric engine."""

__version__ = "0.1.0"
