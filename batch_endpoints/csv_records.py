"""CSV as the outputs hold it: RFC 4180 records (a field holding a comma, a quote, CR or LF is quoted, a quote in
it doubled), UTF-8, each record ending with "\\n".

Record boundaries are found by parsing, never by looking for a newline: a quoted field may hold one.
"""

from __future__ import annotations


class UnixRecords:
    """A text sink for a CSV writer (the csv module's, or pandas', which uses it) told to end records with
    `TOLD`, keeping "\\n" as the line end.

    The csv module quotes a field only for the characters of its own line terminator: told "\\n", it writes a bare
    "\\r" unquoted, and readers then see a line break there (pandas reads phantom rows). Told "\\r\\n", it quotes
    both; each record reaches `write` whole, in one call, and its terminator becomes "\\n" here."""

    TOLD = "\r\n"

    def __init__(self) -> None:
        self._lines: list[str] = []

    def write(self, record: str) -> int:
        if not record.endswith(self.TOLD):
            raise ValueError(f"a CSV writer wrote {record[-20:]!r}, not a whole record ending in {self.TOLD!r}")
        self._lines.append(record[: -len(self.TOLD)])
        return len(record)

    def take(self) -> str:
        """The records written since the last take, and forget them."""
        text = "".join(line + "\n" for line in self._lines)
        self._lines.clear()
        return text

    def utf8(self) -> bytes:
        return self.take().encode()


class FirstRecord:
    """Finds where a CSV's first record (its header) ends, in bytes fed a chunk at a time: a quote opens or
    closes a quoted field (a doubled quote closes and reopens it), and the first "\\n" outside one ends the
    record. Scans only up to there."""

    def __init__(self) -> None:
        self.size = 0
        """Bytes of the first record so far, its "\\n" included once `ended`."""
        self.ended = False
        self._quoted = False

    def feed(self, chunk: bytes) -> None:
        if self.ended:
            return
        at = 0
        while True:
            if self._quoted:
                quote = chunk.find(b'"', at)
                if quote < 0:
                    break
                at, self._quoted = quote + 1, False
                continue
            newline, quote = chunk.find(b"\n", at), chunk.find(b'"', at)
            if newline >= 0 and (quote < 0 or newline < quote):
                self.size += newline + 1
                self.ended = True
                return
            if quote < 0:
                break
            at, self._quoted = quote + 1, True
        self.size += len(chunk)


def split_header(data: bytes) -> tuple[bytes, bytes]:
    """A whole CSV's header record (with its "\\n") and the records after it."""
    first = FirstRecord()
    first.feed(data)
    return data[: first.size], data[first.size :]
