"""Errors a service raises: each has a stable ``code``, a message and an HTTP-like status.

A service that raises has changed nothing: its transaction is rolled back.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, **details) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidRequest(ServiceError):
    """The input names something that cannot be, e.g. an unknown plan or a bad quantity."""


class NotFound(ServiceError):
    """Unknown, or not visible to the caller: both look the same, so ids cannot be probed."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller may see the subject but not do this to it (e.g. a member changing plans)."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    """The subscription changed since the caller read it (``expected_version`` is stale)."""

    status = 409
    code = "version_conflict"


class IdempotencyMismatch(ServiceError):
    """An idempotency key replayed with a different request (body, operation or caller)."""

    status = 422
    code = "idempotency_key_reused"


class Refused(ServiceError):
    """The policy refuses the change; ``code`` is the spec's refusal code."""

    status = 422
