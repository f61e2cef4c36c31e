"""Grid provider: electricitymaps (being built)."""
