"""Request bodies of the API (pydantic 2). Unknown fields are refused, so a misspelt key is
an error (``extra_forbidden``) rather than silently ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from prorata.core.calendar import PeriodUnit
from prorata.core.model import TermSpec
from prorata.services import messages, terms
from prorata.services.subscriptions import ChangeInput

Key = Field(min_length=1, max_length=100)
Timing = Literal["immediate", "end_of_term"]
Period = Literal["daily", "weekly", "monthly", "quarterly", "semiannual", "annual", "biennial"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def no_nul(cls, value):
        """Text holds no NUL character (PostgreSQL text cannot store one)."""
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("NUL characters are not allowed")
        return value


class ChangeBody(Strict):
    """A change of one subscription; a field left out keeps its current value."""

    plan: str | None = Field(default=None, min_length=1, max_length=100)
    quantity: int | None = Field(default=None, ge=1, le=1_000_000)
    period: Period | None = None
    add_products: list[str] = Field(default_factory=list, max_length=20)
    timing: Timing | None = None
    expected_version: int | None = Field(default=None, ge=1)

    def to_input(self, subscription: str) -> ChangeInput:
        return ChangeInput(
            subscription=subscription,
            plan=self.plan,
            quantity=self.quantity,
            period=self.period,
            add_products=tuple(self.add_products),
            timing=self.timing,
            expected_version=self.expected_version,
        )


class CheckoutItem(ChangeBody):
    subscription: str = Key


class CheckoutBody(Strict):
    items: list[CheckoutItem] = Field(min_length=1, max_length=50)


class CancelBody(Strict):
    timing: Timing | None = None
    expected_version: int | None = Field(default=None, ge=1)


def _refused(code: str, value: Any) -> PydanticCustomError:
    """A validation error whose type is the message ``code`` (``problems`` words it in the
    caller's language) and that names the value sent."""
    params = terms.refusal_params(value)
    return PydanticCustomError(code, messages.MESSAGES[code]["en"], params)


class TermBody(Strict):
    """A contract term, as a scenario's ``subscribe.term``: its length and whether it
    renews at its end (true when left out)."""

    period: Period
    auto_renew: bool = True

    @field_validator("period", mode="before")
    @classmethod
    def a_term_period(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in terms.TERM_PERIODS:
            raise _refused("term_period_invalid", value)
        return value

    @field_validator("auto_renew", mode="before")
    @classmethod
    def a_flag(cls, value: Any) -> Any:
        if not isinstance(value, bool):  # not "true", 1 or "yes": a JSON boolean
            raise _refused("term_auto_renew_invalid", value)
        return value

    def to_spec(self) -> TermSpec:
        return TermSpec(PeriodUnit(self.period), self.auto_renew)


class SubscribeBody(Strict):
    account: str = Key
    plan: str = Key
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    billing_day: int | None = Field(default=None, ge=1, le=31)
    # where periods start: from the subscription's start (or billing day), or on the
    # calendar's boundaries (the 1st of a month, …); None takes the tenant policy's
    billing_time: Literal["anniversary", "calendar"] | None = None
    # the contract term: {"period": "annual", "auto_renew": true}; none when left out
    term: TermBody | None = None
    id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("term", mode="before")
    @classmethod
    def a_term_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | TermBody):
            raise _refused("term_not_object", value)
        return value


class CartBody(Strict):
    account: str = Key


class SeatBody(Strict):
    user: int = Field(ge=1)


class AccountBody(Strict):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(default="", max_length=200)
    locale: Literal["en", "fr"] = "en"
    auto_pay: bool = True
    payment_method: str | None = Field(default=None, max_length=32)
    tax_rate: str = Field(default="0", pattern=r"^\d{1,3}(\.\d{1,4})?$")
    vat_id: str | None = Field(default=None, max_length=32)


class UserBody(Strict):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    locale: Literal["en", "fr"] = "en"


class MemberBody(Strict):
    role: Literal["owner", "billing_contact", "member"]


class SessionBody(Strict):
    user: int = Field(ge=1)


class EndpointBody(Strict):
    url: str = Field(min_length=1, max_length=2000)
    topics: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=50)


class EndpointPatch(Strict):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    topics: list[str] | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = None


class RotateBody(Strict):
    overlap_seconds: int = Field(default=86400, ge=0, le=30 * 86400)
