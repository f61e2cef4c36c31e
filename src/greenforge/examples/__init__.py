"""Runnable examples (they need the ``torch`` extra): ``python -m greenforge.examples.train``."""
