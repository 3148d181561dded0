"""Errors a service raises: each has a stable ``code``, an HTTP-like ``status`` and a message
that can be read in the caller's language.

``ServiceError(key, **params)``: ``key`` names the sentence in
:mod:`prorata.services.messages` (by default the code itself), ``params`` fill it and are
also returned to API clients as machine-readable details. A policy refusal arrives already
worded by the core in the reader's language and is passed as ``message``.

A service that raises has changed nothing: its transaction is rolled back.
"""

from __future__ import annotations

from prorata.services import messages


class ServiceError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(
        self,
        key: str | None = None,
        /,
        *,
        code: str | None = None,
        message: str | None = None,
        **params,
    ) -> None:
        # ``key`` is positional-only, so a parameter may be called ``key`` (an idempotency key)
        if code is not None:
            self.code = code
        self.key = key or self.code
        self.params = params
        self._message = message
        self.message = message if message is not None else self.message_in("en")
        super().__init__(self.message)

    @property
    def details(self) -> dict:
        return self.params

    def message_in(self, locale: str) -> str:
        """The message for a reader of ``locale``; a core refusal keeps the words it came in."""
        if self._message is not None:
            return self._message
        return messages.render(self.key, locale, self.params)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidRequest(ServiceError):
    """The input names something that cannot be, e.g. an unknown plan or a bad quantity."""


class Unauthenticated(ServiceError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    status = 401
    code = "unauthenticated"


class NotFound(ServiceError):
    """Unknown, or not visible to the caller: both look the same, so ids cannot be probed.

    ``NotFound(kind=..., id=...)`` reads "Subscription s1 does not exist."."""

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


def ensure_id(kind: str, value: int, *, bits: int = 63) -> int:
    """``value`` if a stored id of ``bits`` bits can have it; otherwise it names nothing,
    which reads exactly like an id that does not exist (:class:`NotFound`)."""
    if not 0 < value < 2**bits:
        raise NotFound(kind=kind, id=value)
    return value
