"""Baselines (filled in by later issues)."""
