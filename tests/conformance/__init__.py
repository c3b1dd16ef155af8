"""Conformance of vsite against a flat site-packages on real distributions."""
