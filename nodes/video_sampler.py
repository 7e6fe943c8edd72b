"""PIDM Sampler to a video written chunk by chunk (filled in by its helper)."""

NODES: list = []
