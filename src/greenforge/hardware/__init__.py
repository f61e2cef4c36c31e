"""Hardware knowledge: what CPU this is (:mod:`.cpuinfo`) and the embedded catalog of CPU TDPs,
cloud instance power coefficients, embodied emissions and PUE defaults (:mod:`.catalog`)."""
