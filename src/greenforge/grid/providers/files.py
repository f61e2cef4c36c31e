"""Grid provider: files (being built)."""
