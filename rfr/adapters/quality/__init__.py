"""Quality assessors: measures and flags of a face before it is searched (P-10)."""
