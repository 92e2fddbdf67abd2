"""How S3 makes one object from pieces of others: the parts of a multipart upload, planned before any request.

A multipart upload's parts must be at least 5 MiB, except the last, and at most 10,000; UploadPartCopy copies at
most 5 GiB into one part (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). A piece of 5 MiB or
more is copied server-side (split when over 5 GiB); smaller ones are downloaded and joined into parts of at least
5 MiB, borrowing the head of a following large piece when that still leaves it 5 MiB to copy. So any mix of sizes
works, and the bytes moved through this process are the small pieces only, at most about 15 MiB a part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from batch_endpoints.ports import BlobRange, check_piece

MIN_PART = 5 * 1024 * 1024
MAX_COPIED_PART = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class PlannedPart:
    pieces: tuple[BlobRange, ...]
    copied: bool
    """True: one piece, copied server-side (UploadPartCopy). False: the pieces downloaded and uploaded."""

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.pieces)


def plan_parts(
    pieces: Sequence[BlobRange], *, min_part: int = MIN_PART, max_copied_part: int = MAX_COPIED_PART
) -> list[PlannedPart]:
    """The parts, in order, whose bytes are the pieces' bytes in order; every part but the last >= min_part."""
    if max_copied_part < 2 * min_part:
        raise ValueError(f"max_copied_part ({max_copied_part}) must be at least twice min_part ({min_part})")
    parts: list[PlannedPart] = []
    buffer: list[BlobRange] = []
    buffered = 0  # the buffer's bytes, kept as it grows: a part may gather tens of thousands of small pieces
    for piece in pieces:
        check_piece(piece)
        if not piece.size:
            continue
        if buffer:
            need = min_part - buffered
            if piece.size - need < min_part:
                buffer.append(piece)
                buffered += piece.size
                if buffered >= min_part:
                    parts.append(PlannedPart(tuple(buffer), copied=False))
                    buffer, buffered = [], 0
                continue
            # Top the buffer up with the piece's head; the rest is still large enough to copy.
            parts.append(PlannedPart((*buffer, BlobRange(piece.uri, piece.start, piece.start + need)), copied=False))
            buffer, buffered = [], 0
            piece = BlobRange(piece.uri, piece.start + need, piece.end)
        if piece.size >= min_part:
            parts.extend(_copies(piece, max_copied_part))
        else:
            buffer, buffered = [piece], piece.size
    if buffer:
        parts.append(PlannedPart(tuple(buffer), copied=False))
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{len(parts)} parts: S3 joins at most {MAX_PARTS} into one object")
    return parts


def _copies(piece: BlobRange, max_copied_part: int) -> list[PlannedPart]:
    """The piece in equal ranges of at most max_copied_part (each at least half of it, so at least min_part)."""
    count = math.ceil(piece.size / max_copied_part)
    bounds = [piece.start + piece.size * n // count for n in range(count + 1)]
    return [PlannedPart((BlobRange(piece.uri, a, b),), copied=True) for a, b in pairwise(bounds)]
