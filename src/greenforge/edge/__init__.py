"""Edge AI: serve where it emits least.

- :mod:`.export` - ONNX export of every kind of forge candidate (fp32, bf16, int8 dynamic and
  static, pruned, distilled), checked against torch with a tolerance per kind, with metadata in
  the file; :mod:`.source` reads candidates back from a forge output directory.
- :mod:`.energy` - energy per inference measured on this CPU (ONNX Runtime, the forge
  measurement protocol) and modelled for device profiles (``model:``).
- :mod:`.devices` - device profiles from published figures, each with its source and bounds.
- :mod:`.compare` - edge vs cloud CO2e per day with intervals and a recommendation.
- :mod:`.workflow` - the ``greenforge edge`` commands as library calls.

Importing this package imports neither torch nor ONNX Runtime.
"""

from __future__ import annotations

__all__: list[str] = []
