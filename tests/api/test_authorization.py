"""Who may call which mutating endpoint of the API, on SQLite and PostgreSQL.

A matrix over EVERY mutating route under ``/v1`` (each POST, PUT, PATCH and DELETE, read
from ``app.routes``: a route without a row fails
``test_the_matrix_covers_every_mutating_route``) and every kind of caller of
``tests/api/conftest.py``:

- ``none`` (no credentials) → 401 ``unauthenticated``; ``expired_token`` → 401
  ``token_expired``; ``revoked_token`` → 401 ``token_revoked``;
- ``read_token`` → 403 ``insufficient_scope`` unless the route only needs ``read``;
- ``token``, ``support`` and ``account_manager`` may do everything;
- customers (``owner``, ``billing_contact``, ``member``) may change corp's subscriptions,
  carts and seats as owner or billing contact (a member: 403 ``forbidden``); only the owner
  manages corp's users; staff-only routes (request decisions, webhook endpoints, accounts,
  users, portal sessions) answer 403 ``forbidden`` to every customer;
- ``stranger`` (owner of another account of the tenant), ``rival`` (owner in another
  tenant) and ``rival_token`` (another tenant's token) get 404 ``not_found``, the very
  answer a missing id gets (same status, code, title and detail once the id is replaced),
  except where the key they send names something of their own tenant (``corp`` exists in
  both tenants): there the call acts in their tenant and acme's rows stay as they were;
  customers get 403 on staff-only routes before any lookup, so there too an existing id
  and a missing one read the same;
- everyone may log out (``DELETE /v1/session``); the session is refused afterwards.

A refused call changes no row of any table (every row of every table of
``prorata.adapters.schema.metadata`` is compared, counts and contents) and leaks nothing:
its body holds none of acme's e-mails, subscription or cart ids it was not given, document
numbers, amounts, webhook URLs or secrets.

Design: one world per row (route); the refused callers run first against one subject, then
each allowed caller gets a fresh subject of its own (a new subscription, cart, request,
user or endpoint, made through the services), so allowed calls never disturb each other.
Every caller is a subtest (22 routes × 13 callers). The database is migrated once per
module and kind. About 7 s on SQLite and 10 s on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import pytest
from sqlalchemy import create_engine, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services import (
    accounts,
    carts,
    documents,
    payments,
    seats,
    subscriptions,
    webhooks,
)
from prorata.services.subscriptions import ChangeInput
from prorata.web.app import create_app
from prorata.web.problems import MEDIA_TYPE
from tests.api.conftest import Api
from tests.conftest import migrated_database
from tests.store.world import START

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
CUSTOMERS = ("owner", "billing_contact", "member")
STAFF = ("token", "support", "account_manager")
CHANGERS = frozenset({"owner", "billing_contact"})
MANAGERS = frozenset({"owner"})
CALLERS = (
    "none",
    "expired_token",
    "revoked_token",
    "read_token",
    "member",
    "billing_contact",
    "stranger",
    "rival",
    "rival_token",
    "owner",
    "support",
    "account_manager",
    "token",
)
MISSING = {
    "subscription": "s999",
    "account": "nope",
    "cart": "cart_00000000000000000000",
    "request": 999,
    "user": 999999,
    "endpoint": 999999,
    "invoice": "INV-9999",
}


# one migrated database per kind, a fresh world (two fresh tenants) per test ---------------

_ENGINES: list = []  # kept alive to the end: build() names its tenants after id(engine)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request, tmp_path_factory):
    yield from migrated_database(request.param, request, tmp_path_factory.mktemp("authz"))


@pytest.fixture
def engine(store_url):
    """Overrides the conftest's ``engine`` (which migrates a database per test): a new
    engine object on the module's database, so ``api`` builds a world of new tenants."""
    engine = make_engine(store_url)
    _ENGINES.append(engine)
    yield engine
    engine.dispose()


# subjects, made through the services ------------------------------------------------------


def _at(api: Api, day: int):
    return api.world.at(day)


def new_subscription(api: Api, tag: str) -> str:
    key = f"s-{tag}"
    subscriptions.subscribe(
        api.world.engine,
        api.world.principals["token"],
        subscription=key,
        account="corp",
        plan="standard-monthly",
        quantity=2,
        billing_day=15,
        at=START,
    )
    return key


def new_cart(api: Api, subscription: str = "s1") -> str:
    owner = api.world.principals["owner"]
    cart = carts.create_cart(api.world.engine, owner, account="corp", at=_at(api, 19))["id"]
    carts.put_item(
        api.world.engine, owner, cart, ChangeInput(subscription, quantity=3), at=_at(api, 19)
    )
    return cart


def new_user(api: Api, tag: str) -> int:
    return accounts.create_user(
        api.world.engine, api.world.principals["token"], email=f"{tag}@new.example", at=_at(api, 19)
    )["id"]


def new_endpoint(api: Api, tag: str) -> int:
    return webhooks.create_endpoint(
        api.world.engine,
        api.world.principals["token"],
        url=f"https://hooks.example/{tag}",
        topics=None,
        at=_at(api, 19),
    )["id"]


def prepare_nothing(api: Api, tag: str) -> dict:
    return {"account": "corp", "subscription": "s1", "user": api.world.users["member"]}


def prepare_subscription(api: Api, tag: str) -> dict:
    return {"subscription": new_subscription(api, tag)}


def prepare_scheduled_cancel(api: Api, tag: str) -> dict:
    key = new_subscription(api, tag)
    done = subscriptions.cancel(
        api.world.engine, api.world.principals["owner"], key, timing="end_of_term", at=_at(api, 18)
    )
    assert done["status"] == "scheduled", done
    return {"subscription": key}


def prepare_seat_to_assign(api: Api, tag: str) -> dict:
    return {"subscription": new_subscription(api, tag), "user": api.world.users["member"]}


def prepare_held_seat(api: Api, tag: str) -> dict:
    key = new_subscription(api, tag)
    seats.assign(
        api.world.engine,
        api.world.principals["owner"],
        key,
        api.world.users["member"],
        at=_at(api, 18),
    )
    return {"subscription": key, "user": api.world.users["member"]}


def prepare_empty_cart(api: Api, tag: str) -> dict:
    owner = api.world.principals["owner"]
    cart = carts.create_cart(api.world.engine, owner, account="corp", at=_at(api, 19))["id"]
    return {"cart": cart, "subscription": "s1"}


def prepare_cart_with_item(api: Api, tag: str) -> dict:
    return {"cart": new_cart(api), "subscription": "s1"}


def prepare_cart_to_check_out(api: Api, tag: str) -> dict:
    return {"cart": new_cart(api, new_subscription(api, tag))}


def prepare_request(api: Api, tag: str) -> dict:
    """A pending approval: the owner upgrades a new subscription, then asks for a tier cut."""
    key = new_subscription(api, tag)
    owner, engine = api.world.principals["owner"], api.world.engine
    up = subscriptions.checkout(
        engine, owner, [ChangeInput(key, plan="premium-monthly")], at=_at(api, 16)
    )
    assert up["status"] == "completed", up
    cut = subscriptions.checkout(
        engine, owner, [ChangeInput(key, plan="standard-monthly")], at=_at(api, 18)
    )
    assert cut["status"] == "requested", cut
    return {"request": cut["items"][0]["request"]["number"]}


def prepare_new_user(api: Api, tag: str) -> dict:
    return {"account": "corp", "user": new_user(api, tag)}


def prepare_new_member(api: Api, tag: str) -> dict:
    user = new_user(api, tag)
    accounts.set_member(
        api.world.engine, api.world.principals["token"], "corp", user, "member", at=_at(api, 19)
    )
    return {"account": "corp", "user": user}


def prepare_open_invoice(api: Api, tag: str) -> dict:
    """corp pays by a sandbox card; a new subscription's first invoice waits for collection."""
    engine, token = api.world.engine, api.world.principals["token"]
    payments.set_payment_method(
        engine, token, "corp", type="card", token="sandbox:card:succeeds", at=_at(api, 19)
    )
    new_subscription(api, tag)
    found = documents.list_documents(engine, token, at=_at(api, 19), status="open")
    return {"invoice": found["items"][-1]["number"]}


def prepare_endpoint(api: Api, tag: str) -> dict:
    return {"endpoint": new_endpoint(api, tag)}


# the rows -----------------------------------------------------------------------------------

Send = Callable[[dict, str], tuple[str, Any]]  # (ids, caller) -> (path, JSON body or None)


@dataclass(frozen=True)
class Row:
    scope: str  # the token scope the route needs
    customers: frozenset[str]  # customer roles of corp allowed; empty: staff only
    prepare: Callable[[Api, str], dict]
    send: Send
    status: int = 200  # of an allowed call
    hidden: str | None = None  # the id outsiders may not learn about
    hidden_from: dict[str, str] = field(default_factory=dict)  # caller -> another hidden id
    own_tenant: frozenset[str] = frozenset()  # outsiders whose call acts in their tenant
    everyone: bool = False  # any authenticated caller may (logging out)

    @property
    def staff_only(self) -> bool:
        return not self.customers and not self.everyone


def _staff_id(who: str) -> dict:
    """Staff and tokens may name a new subscription; customers may not."""
    return {"id": f"s-new-{who}"} if who in STAFF or who == "rival_token" else {}


ROWS: dict[tuple[str, str], Row] = {
    ("POST", "/v1/subscriptions"): Row(
        "write",
        CHANGERS,
        prepare_nothing,
        lambda ids, who: (
            "/v1/subscriptions",
            {"account": ids["account"], "plan": "standard-monthly", **_staff_id(who)},
        ),
        status=201,
        hidden="account",
        own_tenant=frozenset({"rival", "rival_token"}),
    ),
    ("POST", "/v1/subscriptions/{subscription}/preview"): Row(
        "read",
        CHANGERS,
        prepare_nothing,
        lambda ids, who: (f"/v1/subscriptions/{ids['subscription']}/preview", {"quantity": 3}),
        hidden="subscription",
    ),
    ("POST", "/v1/subscriptions/{subscription}/cancel"): Row(
        "write",
        CHANGERS,
        prepare_subscription,
        lambda ids, who: (
            f"/v1/subscriptions/{ids['subscription']}/cancel",
            {"timing": "end_of_term"},
        ),
        hidden="subscription",
    ),
    ("POST", "/v1/subscriptions/{subscription}/undo"): Row(
        "write",
        CHANGERS,
        prepare_scheduled_cancel,
        lambda ids, who: (f"/v1/subscriptions/{ids['subscription']}/undo", None),
        hidden="subscription",
    ),
    ("POST", "/v1/subscriptions/{subscription}/seats"): Row(
        "write",
        CHANGERS,
        prepare_seat_to_assign,
        lambda ids, who: (f"/v1/subscriptions/{ids['subscription']}/seats", {"user": ids["user"]}),
        status=201,
        hidden="subscription",
    ),
    ("DELETE", "/v1/subscriptions/{subscription}/seats/{user}"): Row(
        "write",
        CHANGERS,
        prepare_held_seat,
        lambda ids, who: (f"/v1/subscriptions/{ids['subscription']}/seats/{ids['user']}", None),
        hidden="subscription",
    ),
    ("PUT", "/v1/accounts/{account}/payment-method"): Row(
        "write",
        CHANGERS,
        prepare_nothing,
        lambda ids, who: (
            f"/v1/accounts/{ids['account']}/payment-method",
            {"type": "paypal", "token": "sandbox:paypal:succeeds"},
        ),
        hidden="account",
        own_tenant=frozenset({"rival", "rival_token"}),  # their own tenant's account "corp"
    ),
    ("POST", "/v1/invoices/{number}/pay"): Row(
        "write",
        CHANGERS,
        prepare_open_invoice,
        lambda ids, who: (f"/v1/invoices/{ids['invoice']}/pay", None),
        hidden="invoice",
    ),
    ("POST", "/v1/checkout"): Row(
        "write",
        CHANGERS,
        prepare_subscription,
        lambda ids, who: (
            "/v1/checkout",
            {"items": [{"subscription": ids["subscription"], "quantity": 3}]},
        ),
        hidden="subscription",
    ),
    ("POST", "/v1/carts"): Row(
        "write",
        CHANGERS,
        prepare_nothing,
        lambda ids, who: ("/v1/carts", {"account": ids["account"]}),
        status=201,
        hidden="account",
        own_tenant=frozenset({"rival", "rival_token"}),
    ),
    ("PUT", "/v1/carts/{cart}/items/{subscription}"): Row(
        "write",
        CHANGERS,
        prepare_empty_cart,
        lambda ids, who: (
            f"/v1/carts/{ids['cart']}/items/{ids['subscription']}",
            {"quantity": 3},
        ),
        hidden="cart",
    ),
    ("DELETE", "/v1/carts/{cart}/items/{subscription}"): Row(
        "write",
        CHANGERS,
        prepare_cart_with_item,
        lambda ids, who: (f"/v1/carts/{ids['cart']}/items/{ids['subscription']}", None),
        hidden="cart",
    ),
    ("POST", "/v1/carts/{cart}/checkout"): Row(
        "write",
        CHANGERS,
        prepare_cart_to_check_out,
        lambda ids, who: (f"/v1/carts/{ids['cart']}/checkout", None),
        hidden="cart",
    ),
    ("POST", "/v1/requests/{number}/{decision}"): Row(
        "support",
        frozenset(),
        prepare_request,
        lambda ids, who: (f"/v1/requests/{ids['request']}/approve", None),
        hidden="request",
    ),
    ("POST", "/v1/accounts"): Row(
        "admin",
        frozenset(),
        prepare_nothing,
        lambda ids, who: ("/v1/accounts", {"id": f"acct-{who}", "name": f"New {who}"}),
        status=201,
        own_tenant=frozenset({"rival_token"}),
    ),
    ("PUT", "/v1/accounts/{account}/members/{user}"): Row(
        "admin",
        MANAGERS,
        prepare_new_user,
        lambda ids, who: (
            f"/v1/accounts/{ids['account']}/members/{ids['user']}",
            {"role": "member"},
        ),
        hidden="account",
        # corp is also the rival's own account: there, acme's user is the unknown
        hidden_from={"rival": "user", "rival_token": "user"},
    ),
    ("DELETE", "/v1/accounts/{account}/members/{user}"): Row(
        "admin",
        MANAGERS,
        prepare_new_member,
        lambda ids, who: (f"/v1/accounts/{ids['account']}/members/{ids['user']}", None),
        hidden="account",
        hidden_from={"rival": "user", "rival_token": "user"},
    ),
    ("POST", "/v1/users"): Row(
        "admin",
        frozenset(),
        prepare_nothing,
        lambda ids, who: ("/v1/users", {"email": f"{who}@added.example"}),
        status=201,
        own_tenant=frozenset({"rival_token"}),
    ),
    ("POST", "/v1/portal-sessions"): Row(
        "admin",
        frozenset(),
        prepare_nothing,
        lambda ids, who: ("/v1/portal-sessions", {"user": ids["user"]}),
        status=201,
        hidden="user",
    ),
    ("DELETE", "/v1/session"): Row(
        "read",
        frozenset(),
        prepare_nothing,
        lambda ids, who: ("/v1/session", None),
        status=204,
        everyone=True,
    ),
    ("POST", "/v1/webhook-endpoints"): Row(
        "admin",
        frozenset(),
        prepare_nothing,
        lambda ids, who: ("/v1/webhook-endpoints", {"url": f"https://hooks.example/{who}"}),
        status=201,
        own_tenant=frozenset({"rival_token"}),
    ),
    ("PATCH", "/v1/webhook-endpoints/{endpoint}"): Row(
        "admin",
        frozenset(),
        prepare_endpoint,
        lambda ids, who: (
            f"/v1/webhook-endpoints/{ids['endpoint']}",
            {"url": f"https://hooks.example/{who}/moved"},
        ),
        hidden="endpoint",
    ),
    ("DELETE", "/v1/webhook-endpoints/{endpoint}"): Row(
        "admin",
        frozenset(),
        prepare_endpoint,
        lambda ids, who: (f"/v1/webhook-endpoints/{ids['endpoint']}", None),
        hidden="endpoint",
    ),
    ("POST", "/v1/webhook-endpoints/{endpoint}/rotate-secret"): Row(
        "admin",
        frozenset(),
        prepare_endpoint,
        lambda ids, who: (
            f"/v1/webhook-endpoints/{ids['endpoint']}/rotate-secret",
            {"overlap_seconds": 60},
        ),
        hidden="endpoint",
    ),
}


# what each caller gets ----------------------------------------------------------------------

ALLOWED = "allowed"
OWN_TENANT = "own_tenant"


def expected(row: Row, who: str) -> str | tuple[int, str]:
    """``ALLOWED``, ``OWN_TENANT`` or the refusal (status, code)."""
    if who == "none":
        return 401, "unauthenticated"
    if who == "expired_token":
        return 401, "token_expired"
    if who == "revoked_token":
        return 401, "token_revoked"
    if who == "read_token":
        return ALLOWED if row.scope == "read" else (403, "insufficient_scope")
    if row.everyone or who in STAFF:
        return ALLOWED
    if who in row.own_tenant:
        return OWN_TENANT
    if who == "rival_token":
        return 404, "not_found"
    if row.staff_only:
        return 403, "forbidden"
    if who in ("stranger", "rival"):
        return 404, "not_found"
    assert who in CUSTOMERS, who
    return ALLOWED if who in row.customers else (403, "forbidden")


# the state of the store, and what must not leak ----------------------------------------------


def snapshot(engine) -> dict[str, list]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).all()
            ]
            for table in t.metadata.sorted_tables
        }


def differences(before: dict[str, list], after: dict[str, list]) -> list[str]:
    return [
        f"{name}: {len(before[name])} -> {len(after[name])} rows"
        + ("" if len(before[name]) != len(after[name]) else " (contents changed)")
        for name in before
        if before[name] != after[name]
    ]


def acme_secrets(api: Api) -> set[str]:
    """What a refused caller must not read: acme's e-mails, subscription and cart ids,
    document numbers and amounts, webhook URLs and secrets."""
    tenant = api.world.tenant
    found: set[str] = set()
    with api.world.engine.connect() as connection:
        found |= set(
            connection.execute(
                select(t.users.c.email).where(t.users.c.tenant_id == tenant)
            ).scalars()
        )
        found |= set(
            connection.execute(
                select(t.subscriptions.c.key).where(t.subscriptions.c.tenant_id == tenant)
            ).scalars()
        )
        found |= set(
            connection.execute(select(t.carts.c.key).where(t.carts.c.tenant_id == tenant)).scalars()
        )
        for number, total, due in connection.execute(
            select(
                t.documents.c.number, t.documents.c.total_minor, t.documents.c.amount_due_minor
            ).where(t.documents.c.tenant_id == tenant)
        ):
            found |= {number, f"{total / 100:.2f}", f"{due / 100:.2f}"}
        for url, secret in connection.execute(
            select(t.webhook_endpoints.c.url, t.webhook_endpoints.c.secret).where(
                t.webhook_endpoints.c.tenant_id == tenant
            )
        ):
            found |= {url, secret}
    return {s for s in found if s and s not in ("0.00",)}


def leaked(body: str, secrets: set[str], sent: str) -> list[str]:
    """The secrets ``body`` holds that the request (``sent``) did not name itself."""
    return sorted(
        s
        for s in secrets
        if re.search(rf"(?<![\w.@-]){re.escape(s)}(?![\w.@-])", body)
        and not re.search(rf"(?<![\w.@-]){re.escape(s)}(?![\w.@-])", sent)
    )


# calling ------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    text: str
    media_type: str


def call(api: Api, method: str, path: str, body: Any, who: str) -> Answer:
    headers = api.headers(who, **{"Idempotency-Key": f"authz-{uuid.uuid4().hex}"})
    response = api.client.request(method, path, json=body, headers=headers)
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    parsed = response.json() if response.content else None
    return Answer(response.status_code, parsed, response.text, media_type)


def _replace(value: Any, old: Any, new: str) -> Any:
    """``value`` with the id ``old`` replaced by ``new``: in text, and as a whole value."""
    if isinstance(value, str):
        return re.sub(rf"(?<![\w-]){re.escape(str(old))}(?![\w-])", new, value)
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    if type(value) is type(old) and value == old:
        return new
    return value


def same_refusal(real: Answer, missing: Answer, real_id: Any, missing_id: Any) -> None:
    """Nothing tells an existing id the caller may not see from an id that does not exist:
    the whole problem (status, code, title, detail, params, instance) is the same once the
    id is replaced."""
    assert real.status == missing.status, (real.body, missing.body)
    assert _replace(real.body, real_id, "<id>") == _replace(missing.body, missing_id, "<id>"), (
        real.body,
        missing.body,
    )


@dataclass
class Baseline:
    """The store as the refused callers found it: none of them may change it."""

    rows: dict[str, list]

    def unchanged(self, engine) -> None:
        now = snapshot(engine)
        changed = differences(self.rows, now)
        self.rows = now  # one failure must not spill into the next callers' subtests
        assert not changed, f"a refused call changed rows: {changed}"


def check_refused(
    api: Api, key: tuple[str, str], row: Row, who: str, ids: dict, secrets: set[str], baseline
) -> None:
    method, _ = key
    status, code = expected(row, who)
    path, body = row.send(ids, who)
    answer = call(api, method, path, body, who)
    assert (answer.status, (answer.body or {}).get("code")) == (status, code), answer.text
    assert answer.media_type == MEDIA_TYPE, answer.media_type
    assert {"type", "title", "status", "detail", "code"} <= set(answer.body), answer.body
    sent = f"{path} {json.dumps(body)}"
    assert not leaked(answer.text, secrets, sent), f"leaked {leaked(answer.text, secrets, sent)}"

    hidden = row.hidden_from.get(who, row.hidden)
    if hidden is not None and not (who in CUSTOMERS and not row.staff_only):
        # a caller who may not see the subject: the same answer as for a missing one
        missing_path, missing_body = row.send(ids | {hidden: MISSING[hidden]}, who)
        missing = call(api, method, missing_path, missing_body, who)
        same_refusal(answer, missing, ids[hidden], MISSING[hidden])
    baseline.unchanged(api.world.engine)


def check_allowed(api: Api, key: tuple[str, str], row: Row, who: str, ids: dict) -> None:
    method, _ = key
    path, body = row.send(ids, who)
    answer = call(api, method, path, body, who)
    assert answer.status == row.status, answer.text
    if row.everyone:
        # logged out: a session stops working at once; a token is no session, it still works
        again = call(api, method, path, body, who)
        session = api.credentials[who].startswith("prs_")
        assert again.status == (401 if session else row.status), again.text
        if session:
            assert again.body["code"] == "token_revoked", again.body


def check_own_tenant(api: Api, key: tuple[str, str], row: Row, who: str, ids: dict) -> None:
    """The call succeeds in the caller's own tenant; acme's rows are untouched."""
    method, _ = key
    path, body = row.send(ids, who)
    before = acme_rows(api)
    answer = call(api, method, path, body, who)
    assert answer.status == row.status, answer.text
    assert acme_rows(api) == before, "another tenant's call changed acme's rows"


def acme_rows(api: Api) -> dict[str, list]:
    tenant = api.world.tenant
    with api.world.engine.connect() as connection:
        return {
            table.name: connection.execute(
                select(table)
                .where(table.c.tenant_id == tenant)
                .order_by(*table.primary_key.columns)
            ).all()
            for table in t.metadata.sorted_tables
            if "tenant_id" in table.c
        }


# the matrix ---------------------------------------------------------------------------------


def mutating_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route under /v1 that may change something, hidden from the
    OpenAPI document or not. FastAPI 0.163 keeps included routers as one entry of
    ``app.routes``; ``iter_route_contexts`` walks them (older versions list flat routes)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", iter)(app.routes)
    found = set()
    for route in contexts:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods and path.startswith("/v1/"):
            found |= {(method, path) for method in methods & MUTATING}
    return found


def test_the_matrix_covers_every_mutating_route():
    app = create_app(create_engine("sqlite://"))  # never connected: only the routes are read
    routes = mutating_routes(app)
    assert routes - set(ROWS) == set(), "mutating routes without a row in the matrix"
    assert set(ROWS) - routes == set(), "rows for routes that do not exist"
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() in MUTATING
    }
    assert documented == routes


@pytest.mark.parametrize("key", list(ROWS), ids=[f"{m} {p}" for m, p in ROWS])
def test_authorization_matrix(api, subtests, key):
    row = ROWS[key]
    ids = row.prepare(api, "refused")
    secrets = acme_secrets(api)
    baseline = Baseline(snapshot(api.world.engine))
    refused_first = sorted(CALLERS, key=lambda who: expected(row, who) in (ALLOWED, OWN_TENANT))
    for who in refused_first:
        outcome = expected(row, who)
        with subtests.test(caller=who, expected=str(outcome)):
            if outcome == ALLOWED:
                check_allowed(api, key, row, who, row.prepare(api, who))
            elif outcome == OWN_TENANT:
                check_own_tenant(api, key, row, who, row.prepare(api, who))
            else:
                check_refused(api, key, row, who, ids, secrets, baseline)
