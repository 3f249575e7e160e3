"""Vector index adapters (``VectorIndex``): usearch HNSW for search, exact numpy as the reference."""
