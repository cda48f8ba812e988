"""The append-only ledger of what happened to which model, and why we think so."""

from weightkeeper.ledger.store import Ledger, now_iso

__all__ = ["Ledger", "now_iso"]
