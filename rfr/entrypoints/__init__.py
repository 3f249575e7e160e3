"""Driving side: the HTTP API, the `rfr` command line and the worker."""
