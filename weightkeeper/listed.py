"""Which of the ledger's models a scan's listing has shown: one bit per model id.

Model ids are the ledger's dense row ids, so a million models take 125 KB, not a copy of
the registry. The bits are rebuilt from what each committed page recorded, so a resumed
scan knows what its earlier run listed.
"""

from __future__ import annotations

from collections.abc import Iterable


class ListedModels:
    def __init__(self, highest_id: int = 0) -> None:
        self._bits = bytearray((highest_id >> 3) + 1)

    def add(self, model_ids: Iterable[int]) -> None:
        bits = self._bits
        for model_id in model_ids:
            byte = model_id >> 3
            if byte >= len(bits):
                bits.extend(bytes(byte + 1 - len(bits) + len(bits) // 2))
            bits[byte] |= 1 << (model_id & 7)

    def absent(self, model_ids: Iterable[int]) -> list[int]:
        """The ids among `model_ids` that were not listed."""
        bits = self._bits
        return [model_id for model_id in model_ids
                if (model_id >> 3) >= len(bits) or not bits[model_id >> 3] >> (model_id & 7) & 1]

    def __contains__(self, model_id: int) -> bool:
        byte = model_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] >> (model_id & 7) & 1)
