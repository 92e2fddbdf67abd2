"""Listings a page at a time: what every list of the API answers (a Lambda's response is at most 6 MB, so no
listing may grow with the number of records), with one token shape and one rule for the limit."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from batch_endpoints.errors import ValidationError

T = TypeVar("T")
MOST_PER_PAGE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None
    """Opaque; pass it back for the next page. None on the last page."""


def paged(read: Callable[[int], Sequence[T]], *, limit: int, next_token: str | None) -> Page[T]:
    """A page of a listing; `read(n)` gives at least its first n items in order (more is fine), so a store that
    can stop early reads no further than the page. The token holds an offset: an item added while a client pages
    shifts the later pages by one, so an item may show twice but none is skipped."""
    if not 0 < limit <= MOST_PER_PAGE:
        raise ValidationError(f"must be between 1 and {MOST_PER_PAGE} (got {limit})", field="limit")
    offset = _offset(next_token)
    items = read(offset + limit + 1)
    more = len(items) > offset + limit
    return Page(list(items[offset : offset + limit]), _token(offset + limit) if more else None)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError("is not a token from an earlier page", field="next_token")
    return offset
