"""Callbacks (filled in by later issues)."""
