"""A synthetic Shandong: deterministic residents, organisations and departments."""
