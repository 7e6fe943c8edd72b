"""Speed and memory benchmarks of pidm_core against the official PIDM algorithm (see README.md)."""
