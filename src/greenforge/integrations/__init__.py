"""Integrations with the tools ML engineers already use (each imported lazily, on demand).

- :mod:`greenforge.integrations.prometheus`: ``/metrics`` endpoint and Pushgateway push of a
  running tracker (extra ``prometheus``).
- :mod:`greenforge.integrations.callbacks`: per-epoch energy, budget stop and prediction for
  PyTorch Lightning, the Hugging Face ``Trainer`` and Keras 3 (extras ``lightning``, ``torch``,
  ``keras``).
- :mod:`greenforge.integrations.mlflow` and :mod:`greenforge.integrations.wandb`: a tracked run
  (``track(..., mlflow=True)`` / ``wandb=True``) and a forge's candidates (``greenforge forge
  --mlflow`` / ``--wandb``) in MLflow and W&B runs (extras ``mlflow``, ``wandb``), with the
  figures and names of :mod:`greenforge.integrations.experiments` (library-free).
"""
