"""Integrations with the tools ML engineers already use (each imported lazily, on demand).

- :mod:`greenforge.integrations.prometheus`: ``/metrics`` endpoint and Pushgateway push of a
  running tracker (extra ``prometheus``).
- :mod:`greenforge.integrations.callbacks`: per-epoch energy, budget stop and prediction for
  PyTorch Lightning and the Hugging Face ``Trainer`` (extras ``lightning``, ``torch``).
"""
