"""Shrink: ``greenforge forge`` finds the model with the least lifetime CO2e that meets an
accuracy target (extra ``torch``).

Modules (each imports torch, so import them explicitly; ``import greenforge`` stays light):

- :mod:`greenforge.forge.search` - :func:`~greenforge.forge.search.run_forge`, the whole job.
- :mod:`greenforge.forge.task` - bundled examples and the TOML task file.
- :mod:`greenforge.forge.recipes.base` - the recipe protocol and registry; typed configs in
  :mod:`greenforge.forge.recipes.config`; :mod:`greenforge.forge.spec` (the task),
  :mod:`greenforge.forge.candidate`, :mod:`greenforge.forge.context` (what recipes see).
- :mod:`greenforge.forge.compress` - ``prune_``/``quantize`` with typed configs.
- :mod:`greenforge.forge.evaluate`, :mod:`greenforge.forge.measure`,
  :mod:`greenforge.forge.pareto`, :mod:`greenforge.forge.output`.
"""
