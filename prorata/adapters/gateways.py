"""Payment gateways: the port billing collects through, and a deterministic sandbox.

A gateway only ever sees tokens (``sandbox:card:declined``, a processor's payment-method
id), never card numbers. Every call carries an idempotency key: the same key gives back
the first answer, so a collection retried after a crash never charges twice.

Sandbox tokens are ``sandbox:<type>:<behaviour>`` with a type of
:data:`prorata.core.payments.METHOD_TYPES` and a behaviour of ``succeeds``, ``declined``,
``insufficient_funds`` or ``requires_action``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Protocol

from prorata.core.money import Money
from prorata.core.payments import METHOD_TYPES

BEHAVIOURS = {
    "succeeds": "succeeded",
    "declined": "declined",
    "insufficient_funds": "insufficient_funds",
    "requires_action": "requires_action",
}


class GatewayError(ValueError):
    """A call the gateway refuses outright (unknown token, refund beyond the charge)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Result:
    """``outcome``: ``succeeded`` or a failure of :data:`prorata.core.payments.OUTCOMES`;
    ``reference``: the gateway's id of the charge, authorization or refund."""

    outcome: str
    reference: str | None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"


class Gateway(Protocol):
    def authorize(self, token: str, amount: Money, key: str) -> Result: ...

    def capture(self, authorization: str, amount: Money, key: str) -> Result: ...

    def refund(self, charge: str, amount: Money, key: str) -> Result: ...


def charge(gateway: Gateway, token: str, amount: Money, key: str) -> Result:
    """Authorize then capture ``amount`` on ``token``: the charge of one collection."""
    auth = gateway.authorize(token, amount, f"{key}:authorize")
    if not auth.succeeded:
        return auth
    return gateway.capture(auth.reference, amount, f"{key}:capture")


def sandbox_token(method: str, behaviour: str = "succeeds") -> str:
    """The sandbox token of a test method; refuses unknown types and behaviours."""
    if method not in METHOD_TYPES:
        raise GatewayError("unknown_method", f"{method!r} is not one of {METHOD_TYPES}")
    if behaviour not in BEHAVIOURS:
        raise GatewayError("unknown_behaviour", f"{behaviour!r} is not one of {tuple(BEHAVIOURS)}")
    return f"sandbox:{method}:{behaviour}"


def parse_sandbox_token(token: str) -> tuple[str, str]:
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "sandbox":
        raise GatewayError("unknown_token", f"{token!r} is not a sandbox token")
    sandbox_token(parts[1], parts[2])
    return parts[1], parts[2]


class SandboxGateway:
    """A gateway that answers from the token alone, the same way every time.

    It remembers authorizations, captures and refunds in memory (per instance), answers a
    repeated key with the first answer, and refuses to capture more than was authorized or
    refund more than it captured.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple, Result] = {}
        self._authorized: dict[str, Money] = {}
        self._captured: dict[str, Money] = {}
        self._refunded: dict[str, Money] = {}

    @staticmethod
    def _reference(prefix: str, key: str) -> str:
        return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"

    def _once(self, key: str, params: tuple, answer) -> Result:
        """The first answer for ``key``; a key reused with other parameters is another
        request (a processor would refuse it; the sandbox answers it afresh)."""
        memo = (key, params)
        if memo not in self._answers:
            self._answers[memo] = answer()
        return self._answers[memo]

    def authorize(self, token: str, amount: Money, key: str) -> Result:
        _, behaviour = parse_sandbox_token(token)

        def answer() -> Result:
            outcome = BEHAVIOURS[behaviour]
            if outcome != "succeeded":
                return Result(outcome, None)
            reference = self._reference("auth", key)
            self._authorized[reference] = amount
            return Result("succeeded", reference)

        return self._once(key, (token, amount), answer)

    def capture(self, authorization: str, amount: Money, key: str) -> Result:
        def answer() -> Result:
            held = self._authorized.get(authorization)
            if held is None or amount > held:
                raise GatewayError("capture_refused", f"cannot capture {amount} on {authorization}")
            reference = self._reference("ch", key)
            self._captured[reference] = amount
            return Result("succeeded", reference)

        return self._once(key, (authorization, amount), answer)

    def refund(self, charge: str, amount: Money, key: str) -> Result:
        def answer() -> Result:
            captured = self._captured.get(charge)
            done = self._refunded.get(charge, Money.zero(amount.currency))
            # a charge captured by another process is unknown here; billing caps refunds
            if captured is not None and done + amount > captured:
                raise GatewayError("refund_refused", f"cannot refund {amount} of {charge}")
            self._refunded[charge] = done + amount
            return Result("succeeded", self._reference("re", key))

        return self._once(key, (charge, amount), answer)


def gateway_from_environment() -> Gateway:
    """The gateway named by ``PRORATA_GATEWAY``; ``sandbox`` (the default) is the only one
    built in. A processor's adapter implements :class:`Gateway` the same way."""
    name = os.environ.get("PRORATA_GATEWAY", "sandbox")
    if name != "sandbox":
        raise GatewayError("unknown_gateway", f"PRORATA_GATEWAY={name!r}: only 'sandbox' exists")
    return SandboxGateway()
