"""Grid provider: ukneso (being built)."""
