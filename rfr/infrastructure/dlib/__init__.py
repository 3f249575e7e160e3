"""Readers for the CC0 dlib model files (see shared/spec/DLIB_MODEL_FORMAT.md)."""
