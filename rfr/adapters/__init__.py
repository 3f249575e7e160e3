"""Driven side: implementations of the application's ports."""
