"""A request the gateway refuses before it reaches the API, as API Gateway would: its status, the message of its
`{"message": ...}` body and its error type (the x-amzn-ErrorType header)."""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, status: int, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
