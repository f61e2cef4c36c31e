"""Grid provider: watttime (being built)."""
