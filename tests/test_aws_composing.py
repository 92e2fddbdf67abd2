"""How S3's multipart rules shape a composed object's parts: planned before any request, so checked here
without S3 (the store contract checks the bytes against moto, which enforces the 5 MiB minimum)."""

from __future__ import annotations

import pytest

from batch_endpoints.adapters.aws.composing import MAX_PARTS, PlannedPart, plan_parts
from batch_endpoints.ports import BlobRange

MIN = 100
MAX_COPY = 250


def pieces(*sizes: int) -> list[BlobRange]:
    return [BlobRange(f"s3://b/{n}", 10, 10 + size) for n, size in enumerate(sizes)]


def plan(*sizes: int) -> list[PlannedPart]:
    return plan_parts(pieces(*sizes), min_part=MIN, max_copied_part=MAX_COPY)


def covered(parts: list[PlannedPart]) -> list[tuple[str, int, int]]:
    """The bytes the parts hold, in order, with adjacent ranges of one object joined."""
    joined: list[tuple[str, int, int]] = []
    for piece in (p for part in parts for p in part.pieces):
        if joined and joined[-1][0] == piece.uri and joined[-1][2] == piece.start:
            joined[-1] = (piece.uri, joined[-1][1], piece.end)
        else:
            joined.append((piece.uri, piece.start, piece.end))
    return joined


@pytest.mark.parametrize(
    "sizes",
    [(1,), (99, 1), (100,), (1, 199), (1, 200), (99, 100, 101), (5, 1000, 5), (0, 0), (3, 0, 250, 251, 0, 1)],
)
def test_every_part_but_the_last_reaches_the_minimum_and_no_byte_moves(sizes: tuple[int, ...]) -> None:
    parts = plan(*sizes)

    assert all(part.size >= MIN for part in parts[:-1])
    assert all(part.size <= MAX_COPY for part in parts if part.copied)
    assert all(len(part.pieces) == 1 for part in parts if part.copied)
    assert covered(parts) == [(p.uri, p.start, p.end) for p in pieces(*sizes) if p.size]


def test_large_pieces_are_copied_and_small_ones_joined() -> None:
    parts = plan(40, 70, 500, 30)

    assert [(part.copied, part.size) for part in parts] == [(False, 110), (True, 250), (True, 250), (False, 30)]


def test_a_small_piece_before_a_large_one_borrows_its_head_only_if_enough_is_left_to_copy() -> None:
    assert [(p.copied, p.size) for p in plan(30, 160)] == [(False, 190)]
    assert [(p.copied, p.size) for p in plan(30, 170, 1)] == [(False, 100), (True, 100), (False, 1)]


def test_nothing_to_join_is_no_part() -> None:
    assert plan() == [] and plan(0, 0) == []


def test_more_parts_than_s3_joins_are_refused() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_PARTS}"):
        plan(*([MIN] * (MAX_PARTS + 1)))


def test_a_piece_that_is_no_range_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a range of bytes"):
        plan_parts([BlobRange("s3://b/k", 5, 4)], min_part=MIN, max_copied_part=MAX_COPY)
