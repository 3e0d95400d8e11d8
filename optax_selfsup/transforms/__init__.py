"""Optax transformations with torch / mmcv semantics."""
