"""The listed-models bitmap: one bit per ledger model id, growing as new models get ids."""

from __future__ import annotations

from weightkeeper.listed import ListedModels


def test_listed_ids_are_found_and_others_absent_however_far_beyond_the_initial_size() -> None:
    listed = ListedModels(highest_id=10)
    listed.add([0, 7, 8, 10])
    listed.add([1_000_003])  # an id handed out after the bitmap was sized
    assert [i in listed for i in (0, 7, 8, 10, 1_000_003)] == [True] * 5
    assert listed.absent([0, 1, 7, 9, 10, 11, 1_000_002, 1_000_003, 5_000_000]) == [1, 9, 11, 1_000_002, 5_000_000]
