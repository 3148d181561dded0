"""Payment methods on file and paying an open invoice now."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from prorata.adapters.gateways import Gateway, gateway_from_environment
from prorata.services import payments
from prorata.web.deps import Write
from prorata.web.schemas import Strict

router = APIRouter(tags=["payments"])


@lru_cache(maxsize=1)
def gateway() -> Gateway:
    """The process's gateway client (PRORATA_GATEWAY; the sandbox by default)."""
    return gateway_from_environment()


class PaymentMethodBody(Strict):
    type: Literal["card", "paypal", "sepa_debit", "bank_transfer"]
    token: str = Field(
        min_length=1, max_length=200, description="A gateway token, never a card number"
    )


@router.put("/accounts/{account}/payment-method", summary="Put a payment method on file")
def set_payment_method(account: str, body: PaymentMethodBody, call: Write) -> dict:
    return payments.set_payment_method(
        call.engine,
        call.principal,
        account,
        type=body.type,
        token=body.token,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.post("/invoices/{number}/pay", summary="Pay an open invoice now with the method on file")
def pay_invoice(number: str, call: Write) -> dict:
    return payments.pay_invoice(
        call.engine,
        gateway(),
        call.principal,
        number,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )
