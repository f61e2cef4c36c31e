"""Federated learning on Flower: a carbon ledger and carbon-aware client selection.

Built on Flower's Message API (``flwr>=1.22``: ``ServerApp``/``ClientApp`` and the
``flwr.serverapp.strategy`` strategies), imported only when a federated feature is used
(``pip install 'greenforge[flower]'``).

==============================  ===========================================================
:mod:`.client`                  ``carbon_mod``: a Flower client mod that measures each
                                ``train``/``evaluate`` with the tracker and returns the
                                figures in the reply (metrics + a ``greenforge`` ConfigRecord)
:mod:`.ledger`                  ``Ledger``/``LedgerEntry``: per client per round zone, hour,
                                energy, intensity, CO2e, bytes and network energy (bounds),
                                persisted as JSON next to the run store
:mod:`.network`                 the cited kWh/GB coefficient range for data transfer
:mod:`.strategy`                ``CarbonLedger`` (records around any strategy: FedAvg, FedProx,
                                FedAdam ...) and ``CarbonAwareSelection`` (picks clients and
                                round slots by forecast intensity, with a fairness floor,
                                slack and a carbon budget)
:mod:`.selection`               the pure selection core (deadline-first fairness, alpha-fair
                                or blocklist rule, slot choice)
:mod:`.clock`                   simulated clock (round r at hour h(r)) and wall clock
:mod:`.local`                   ``InProcessGrid``: runs a ClientApp in this process (tests,
                                quick runs) - the Ray simulation engine is the real thing
:mod:`.example`                 the digits/mnist5k three-way comparison on Flower's Ray engine
==============================  ===========================================================
"""

from __future__ import annotations
