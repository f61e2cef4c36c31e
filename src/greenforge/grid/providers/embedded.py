"""Grid provider: embedded (being built)."""
