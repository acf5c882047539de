"""Federated learning with an audit trail: any Flower strategy wrapped so that every round is logged
(``fl.round``), every update signed by its client's ailedger identity, every aggregate replayable bit for
bit from the stored updates, and poisoned contributors scored, flagged and removable (docs/federated.md).

Flower (``flwr``) and numpy are imported by the modules that use them; this package's own import is light.
"""

__all__ = ["audit", "client", "data", "dp", "model", "params", "service", "store", "strategy"]
