"""Grid provider: energidata (being built)."""
