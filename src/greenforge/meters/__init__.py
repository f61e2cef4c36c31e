"""Energy meters, one module per source, behind the small :class:`~greenforge.meters.base.Meter`
protocol and registered by name: ``rapl`` (:mod:`.rapl`), ``nvidia`` (:mod:`.nvidia`), ``amd``
(:mod:`.amd`), ``model-cpu`` and ``model-ram`` (:mod:`.model`). :mod:`.select` chooses the
meters for a machine and says why. Importing this package imports no meter module.
"""
