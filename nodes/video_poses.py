"""Poses From Video: one person's pose sequence from a driving video (filled in by the lead)."""

NODES: list = []
