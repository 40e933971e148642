"""Qilu (齐鲁): an open-source digital-government platform a province can run as its core."""

__version__ = "0.1.0"
