"""Accounts, users, roles, account credit and portal sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from prorata.services import accounts, credentials, documents
from prorata.web.deps import SESSION_COOKIE, Admin, Limit, Offset, Read, bearer
from prorata.web.schemas import AccountBody, MemberBody, SessionBody, UserBody

router = APIRouter()


@router.get("/accounts", tags=["accounts"], summary="Accounts the caller sees")
def list_accounts(call: Read, limit: Limit = 50, offset: Offset = 0) -> dict:
    return accounts.list_accounts(
        call.engine, call.principal, at=call.at, limit=limit, offset=offset
    )


@router.post("/accounts", tags=["accounts"], status_code=201, summary="Create an account")
def create_account(body: AccountBody, call: Admin) -> dict:
    return accounts.create_account(
        call.engine,
        call.principal,
        account=body.id,
        name=body.name,
        locale=body.locale,
        auto_pay=body.auto_pay,
        payment_method=body.payment_method,
        tax_rate=body.tax_rate,
        vat_id=body.vat_id,
        at=call.at,
        key=call.key,
    )


@router.get("/accounts/{account}", tags=["accounts"], summary="An account and its members")
def get_account(account: str, call: Read) -> dict:
    return accounts.get_account(call.engine, call.principal, account, at=call.at)


@router.get("/accounts/{account}/credit", tags=["accounts"], summary="Account credit")
def get_credit(account: str, call: Read) -> dict:
    return documents.get_credit(call.engine, call.principal, account, at=call.at)


@router.put(
    "/accounts/{account}/members/{user}",
    tags=["accounts"],
    summary="Give a user a role on the account (owner, billing_contact, member)",
)
def set_member(account: str, user: int, body: MemberBody, call: Admin) -> dict:
    return accounts.set_member(
        call.engine, call.principal, account, user, body.role, at=call.at, key=call.key
    )


@router.delete(
    "/accounts/{account}/members/{user}",
    tags=["accounts"],
    summary="Remove a user from the account (their seats are released)",
)
def remove_member(account: str, user: int, call: Admin) -> dict:
    return accounts.remove_member(
        call.engine, call.principal, account, user, at=call.at, key=call.key
    )


@router.post("/users", tags=["accounts"], status_code=201, summary="Create a user")
def create_user(body: UserBody, call: Admin) -> dict:
    return accounts.create_user(
        call.engine,
        call.principal,
        email=body.email,
        name=body.name,
        locale=body.locale,
        at=call.at,
        key=call.key,
    )


@router.post(
    "/portal-sessions",
    tags=["sessions"],
    status_code=201,
    summary="Open a portal session for a user (the seller's backend hands it over)",
)
def open_session(body: SessionBody, call: Admin) -> dict:
    return credentials.create_session(call.engine, call.principal, body.user, at=call.at)


@router.delete("/session", tags=["sessions"], status_code=204, summary="Log out")
def close_session(
    request: Request, credentials_: Annotated[object, Depends(bearer)], call: Read
) -> Response:
    raw = getattr(credentials_, "credentials", None) or request.cookies.get(SESSION_COOKIE)
    if raw and raw.startswith("prs_"):
        credentials.revoke_session(call.engine, raw, now=call.at)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response
