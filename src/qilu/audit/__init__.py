"""The append-only audit log whose entries are chained by SM3 hashes; used by every module."""
