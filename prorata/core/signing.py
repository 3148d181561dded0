"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact request body.

The scheme, for a receiver to implement:

- Every delivery carries ``Prorata-Signature: t=<timestamp>,v1=<hex>[,v1=<hex>…]`` where
  ``<timestamp>`` is the Unix time (whole seconds, UTC) at which the request was signed.
- Each ``v1`` is ``hex(HMAC-SHA256(key=secret, msg=f"{timestamp}." + body))``: the
  timestamp's decimal digits, one ASCII dot, then the raw request body bytes exactly as
  received (do not re-serialise the JSON). The secret is used as its UTF-8 bytes,
  ``whsec_`` prefix included.
- During a secret rotation the request is signed once per valid secret, so there may be
  several ``v1`` entries; a request is authentic when any one of them matches the
  receiver's secret. Unknown keys in the header are ignored (room for new schemes).
- A receiver rejects a timestamp more than ``tolerance`` seconds (300 by default) away from
  its own clock, which bounds replays; the event id (``Prorata-Event-Id``, also ``id`` in
  the body) stays the same across retries, so receivers deduplicate on it.
- Compare signatures in constant time (:func:`hmac.compare_digest`).

A receiver in Python, given the raw body and the header::

    from prorata.core.signing import SignatureError, verify
    try:
        verify(request.headers["Prorata-Signature"], raw_body, secret, now=int(time.time()))
    except SignatureError:
        ...  # answer 400: not from prorata, altered, or replayed too late

Pure: no I/O and no clock reads; the caller passes ``timestamp`` and ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

SCHEME = "v1"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300


class SignatureError(ValueError):
    """A signature header that does not authenticate the body; the message says why."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}." + body`` under ``secret``."""
    if not secret:
        raise ValueError("a webhook secret cannot be empty")
    message = f"{int(timestamp)}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex>`` with one ``v1`` per secret, in the order given."""
    if isinstance(secrets, str) or not secrets:
        raise ValueError("signature_header needs a non-empty sequence of secrets")
    parts = [f"t={int(timestamp)}"]
    parts += [f"{SCHEME}={sign(secret, timestamp, body)}" for secret in secrets]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a header; :class:`SignatureError` if
    malformed (no single integer ``t``, no ``v1``, or a part without ``=``)."""
    if not isinstance(header, str) or not header.strip():
        raise SignatureError("malformed signature header: it is empty")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name or not value:
            raise SignatureError(f"malformed signature header: {part.strip()!r} is not key=value")
        if name == "t":
            timestamps.append(value)
        elif name == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1:
        raise SignatureError("malformed signature header: expected exactly one t=<timestamp>")
    if not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise SignatureError(
            f"malformed signature header: timestamp {timestamps[0]!r} is not a whole number"
        )
    if not signatures:
        raise SignatureError(f"malformed signature header: no {SCHEME}= signature")
    return int(timestamps[0]), signatures


def verify(
    header: str, body: bytes, secret: str, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Return if ``header`` authenticates ``body`` under ``secret`` at Unix time ``now``;
    else raise :class:`SignatureError` (malformed header, timestamp more than ``tolerance``
    seconds from ``now``, or no signature matching)."""
    timestamp, signatures = parse_header(header)
    if abs(int(now) - timestamp) > tolerance:
        raise SignatureError(
            f"timestamp {timestamp} is {abs(int(now) - timestamp)} s from now ({int(now)}), "
            f"outside the tolerance of {tolerance} s"
        )
    expected = sign(secret, timestamp, body)
    matched = False
    for candidate in signatures:
        # Every candidate is compared, so the time taken does not reveal which one matched.
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("no signature matches this secret and body")


def new_secret() -> str:
    """A fresh random signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + _secrets.token_urlsafe(32)
