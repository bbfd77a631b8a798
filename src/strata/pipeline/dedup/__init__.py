"""Deduplication: exact (normalized-text hash) and near-duplicate (MinHash LSH)."""
