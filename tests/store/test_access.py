"""Who may do what (``prorata.services.access``), on SQLite and PostgreSQL.

An authorization matrix over every service that reads or changes a subscription, against
every kind of caller of the small world (:mod:`tests.store.world`):

- ``owner`` and ``billing_contact`` of corp may change corp's subscriptions;
- a ``member`` of corp may read them but not change or preview a change (Forbidden);
- ``stranger`` (owner of another account of the tenant) and ``rival`` (a user of another
  tenant) get NotFound, indistinguishable from a subscription that does not exist;
- ``support``, ``account_manager`` and the tenant's API ``token`` may act on any account;
- deciding requests (approve, reject, fulfil) is for staff and tokens only.

A refused call changes nothing and leaks nothing: every table a service writes is the same
afterwards. An allowed change is audited; a staff change as on behalf of the account.
Each case builds its own world (its own two tenants) in a database migrated once per module
and database kind, so the cases are independent of each other and cheap on PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services import requests, seats, subscriptions
from prorata.services.access import Principal
from prorata.services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from prorata.services.subscriptions import ChangeInput
from tests.conftest import migrated_database
from tests.store.world import World, build

ROLES = (
    "owner",
    "billing_contact",
    "member",
    "stranger",
    "rival",
    "support",
    "account_manager",
    "token",
)
CHANGERS = ("owner", "billing_contact")
STAFF = ("support", "account_manager", "token")
OUTSIDERS = ("stranger", "rival")

# What a case ends with: the call succeeds (``OK``), or raises one of these errors (codes).
OK = "ok"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
WRONG_DECISION = "wrong_decision"
OWN_TENANT = "own_tenant"  # the call succeeds, but in the caller's own tenant: acme is untouched

SETUP_DAY, CALL_DAY = 18, 20
MISSING_SUBSCRIPTION = "s999"
MISSING_ACCOUNT = "nope"
MISSING_REQUEST = 999

# Counted in full (every tenant) around a call: what a service may write.
COUNTED = (
    t.documents,
    t.document_lines,
    t.orders,
    t.order_items,
    t.subscription_terms,
    t.audit_log,
    t.outbox,
    t.idempotency_keys,
    t.requests,
    t.seat_assignments,
    t.ledger_entries,
    t.subscriptions,
)


# one migrated database per kind; a fresh world (two fresh tenants) per case ----------------

_ENGINES: list = []  # kept alive to the end: build() names its tenants after id(engine)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request, tmp_path_factory):
    """A migrated database shared by this module's cases (the conftest's ``db_url`` migrates
    one per test, which dominates the runtime of a matrix this size on PostgreSQL)."""
    yield from migrated_database(request.param, request, tmp_path_factory.mktemp("access"))


@pytest.fixture
def engine(store_url):
    """Overrides the conftest's ``engine``: a new engine object on the shared database."""
    engine = make_engine(store_url)
    _ENGINES.append(engine)
    yield engine
    engine.dispose()


# the state of the store ---------------------------------------------------------------------


def _of_tenant(table, tenant: int | None):
    """A filter keeping ``table``'s rows of ``tenant`` (all rows for ``None``)."""
    if tenant is None:
        return []
    if "tenant_id" in table.c:
        return [table.c.tenant_id == tenant]
    owners = {
        "subscription_id": select(t.subscriptions.c.id).where(
            t.subscriptions.c.tenant_id == tenant
        ),
        "order_id": select(t.orders.c.id).where(t.orders.c.tenant_id == tenant),
        "document_id": select(t.documents.c.id).where(t.documents.c.tenant_id == tenant),
    }
    for column, ids in owners.items():
        if column in table.c:
            return [table.c[column].in_(ids)]
    raise AssertionError(f"cannot scope {table.name} to a tenant")


def snapshot(engine, tenant: int | None = None) -> dict[str, Any]:
    """Row counts of every table a service writes, plus the mutable state of subscriptions,
    requests, seats and number series: equal snapshots mean nothing changed."""
    with engine.connect() as connection:
        state: dict[str, Any] = {
            table.name: connection.execute(
                select(func.count()).select_from(table).where(*_of_tenant(table, tenant))
            ).scalar_one()
            for table in COUNTED
        }
        s = t.subscriptions.c
        state["subscription_rows"] = connection.execute(
            select(s.tenant_id, s.key, s.version, s.status, s.plan, s.quantity, s.due_at)
            .where(*_of_tenant(t.subscriptions, tenant))
            .order_by(s.id)
        ).all()
        r = t.requests.c
        state["request_rows"] = connection.execute(
            select(r.tenant_id, r.number, r.state, r.decided_by, r.decided_at)
            .where(*_of_tenant(t.requests, tenant))
            .order_by(r.id)
        ).all()
        a = t.seat_assignments.c
        state["seat_rows"] = connection.execute(
            select(a.id, a.user_id, a.released_at)
            .where(*_of_tenant(t.seat_assignments, tenant))
            .order_by(a.id)
        ).all()
        n = t.number_series.c
        state["number_series"] = connection.execute(
            select(n.tenant_id, n.series, n.last)
            .where(*_of_tenant(t.number_series, tenant))
            .order_by(n.tenant_id, n.series)
        ).all()
    return state


def last_audit_id(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.coalesce(func.max(t.audit_log.c.id), 0))).scalar_one()


def audit_rows_after(engine, audit_id: int):
    with engine.connect() as connection:
        return connection.execute(
            select(t.audit_log).where(t.audit_log.c.id > audit_id).order_by(t.audit_log.c.id)
        ).all()


def account_id(world: World, key: str) -> int:
    with world.engine.connect() as connection:
        return connection.execute(
            select(t.accounts.c.id).where(
                t.accounts.c.tenant_id == world.tenant, t.accounts.c.key == key
            )
        ).scalar_one()


# the services -------------------------------------------------------------------------------


def prepare_nothing(world: World) -> None:
    return None


def prepare_scheduled_cancel(world: World) -> None:
    """Something to undo: the owner cancels s1 at the end of its term."""
    result = subscriptions.cancel(
        world.engine,
        world.principals["owner"],
        "s1",
        timing="end_of_term",
        at=world.at(SETUP_DAY),
    )
    assert result["status"] == "scheduled", result


def prepare_held_seat(world: World) -> None:
    """Something to release: the owner gives the member a seat of s1."""
    seats.assign(
        world.engine, world.principals["owner"], "s1", world.users["member"], at=world.at(SETUP_DAY)
    )


def prepare_request(world: World) -> int:
    """A pending approval request: the owner upgrades s1, then asks for the lower tier back."""
    owner = world.principals["owner"]
    upgrade = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="premium-monthly")], at=world.at(16)
    )
    assert upgrade["status"] == "completed", upgrade
    cut = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="standard-monthly")], at=world.at(SETUP_DAY)
    )
    assert cut["status"] == "requested", cut
    request = cut["items"][0]["request"]
    assert request["reason"] == "approval_required", request
    return request["number"]


def _at(world: World):
    return world.at(CALL_DAY)


def _key(principal: Principal, operation: str, missing: bool) -> str:
    """A fresh idempotency key per call, so a refused call's key would show if it stuck."""
    return f"{operation}-{principal.kind}-{principal.user_id}-{'missing' if missing else 'real'}"


def call_get(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return subscriptions.get_subscription(world.engine, principal, key, at=_at(world))


def call_preview(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return subscriptions.preview(
        world.engine, principal, ChangeInput(key, quantity=3), at=_at(world)
    )


def call_checkout(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return subscriptions.checkout(
        world.engine,
        principal,
        [ChangeInput(key, quantity=3)],
        at=_at(world),
        key=_key(principal, "checkout", missing),
    )


def call_cancel(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return subscriptions.cancel(
        world.engine, principal, key, at=_at(world), key=_key(principal, "cancel", missing)
    )


def call_undo(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return subscriptions.undo(
        world.engine, principal, key, at=_at(world), key=_key(principal, "undo", missing)
    )


def call_subscribe(world, principal, prepared, missing):
    return subscriptions.subscribe(
        world.engine,
        principal,
        subscription="s2" if principal.is_staff else None,
        account=MISSING_ACCOUNT if missing else "corp",
        plan="standard-monthly",
        quantity=1,
        billing_day=15,
        at=_at(world),
        key=_key(principal, "subscribe", missing),
    )


def call_assign(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return seats.assign(
        world.engine,
        principal,
        key,
        world.users["member"],
        at=_at(world),
        key=_key(principal, "assign", missing),
    )


def call_release(world, principal, prepared, missing):
    key = MISSING_SUBSCRIPTION if missing else "s1"
    return seats.release(
        world.engine,
        principal,
        key,
        world.users["member"],
        at=_at(world),
        key=_key(principal, "release", missing),
    )


def decider(decision: str) -> Callable:
    def call(world, principal, prepared, missing):
        return requests.decide(
            world.engine,
            principal,
            MISSING_REQUEST if missing else prepared,
            decision,
            at=_at(world),
            key=_key(principal, decision, missing),
        )

    return call


@dataclass(frozen=True)
class Service:
    prepare: Callable[[World], Any]
    call: Callable[[World, Principal, Any, bool], dict]
    writes: bool = True
    decision: bool = False

    def names(self, prepared) -> tuple[str, str]:
        """How the subject is named in messages: (the real one, the missing one)."""
        if self.decision:
            return str(prepared), str(MISSING_REQUEST)
        if self.call is call_subscribe:
            return "corp", MISSING_ACCOUNT
        return "s1", MISSING_SUBSCRIPTION


SERVICES = {
    "get_subscription": Service(prepare_nothing, call_get, writes=False),
    "preview": Service(prepare_nothing, call_preview, writes=False),
    "checkout": Service(prepare_nothing, call_checkout),
    "cancel": Service(prepare_nothing, call_cancel),
    "undo": Service(prepare_scheduled_cancel, call_undo),
    "subscribe": Service(prepare_nothing, call_subscribe),
    "seats.assign": Service(prepare_nothing, call_assign),
    "seats.release": Service(prepare_held_seat, call_release),
    "decide.approve": Service(prepare_request, decider("approve"), decision=True),
    "decide.reject": Service(prepare_request, decider("reject"), decision=True),
    "decide.fulfil": Service(prepare_request, decider("fulfil"), decision=True),
}


def expected(service: str, role: str) -> str:
    """The rules of ``prorata.services.access`` as a table."""
    if SERVICES[service].decision:
        if role in STAFF:
            # the only request this catalog can open is an approval: it cannot be fulfilled
            return WRONG_DECISION if service == "decide.fulfil" else OK
        return FORBIDDEN
    if role == "rival" and service == "subscribe":
        # the tenant is the caller's: "corp" names the rival's own account, not acme's
        return OWN_TENANT
    if role in OUTSIDERS:
        return NOT_FOUND
    if role == "member":
        return OK if service == "get_subscription" else FORBIDDEN
    assert role in CHANGERS + STAFF, role
    return OK


def check_result(world: World, service: str, result: dict) -> None:
    """The allowed call did what it says."""
    if service == "get_subscription":
        assert result["id"] == "s1" and result["account"] == "corp", result
    elif service == "preview":
        assert result["allowed"] and result["subscription"] == "s1", result
    elif service == "checkout":
        assert result["status"] == "completed", result
        assert result["items"][0]["status"] == "applied", result
    elif service == "cancel":
        assert result["subscription"] == "s1" and result["status"] == "scheduled", result
    elif service == "undo":
        assert result["subscription"] == "s1" and result["status"] == "applied", result
    elif service == "subscribe":
        assert result["documents"], result
    elif service == "seats.assign":
        assert [h["user"] for h in result["assigned"]] == [world.users["member"]], result
    elif service == "seats.release":
        assert result["assigned"] == [], result
    elif service == "decide.approve":
        assert result["request"]["state"] == "approved", result
    elif service == "decide.reject":
        assert result["request"]["state"] == "rejected", result
    else:  # pragma: no cover
        raise AssertionError(service)


def same_error(real: ServiceError, missing: ServiceError, names: tuple[str, str]) -> None:
    """``real`` (an existing subject the caller may not see) cannot be told apart from
    ``missing`` (a subject that does not exist) by type, code, status or message."""
    assert type(real) is type(missing)
    assert (real.code, real.status) == (missing.code, missing.status)
    name, missing_name = names
    assert real.message.replace(name, "<subject>") == missing.message.replace(
        missing_name, "<subject>"
    )


MATRIX = [(service, role) for service in SERVICES for role in ROLES]


@pytest.mark.parametrize(("service", "role"), MATRIX, ids=[f"{s}-{r}" for s, r in MATRIX])
def test_authorization_matrix(engine, service, role):
    world = build(engine)
    spec = SERVICES[service]
    prepared = spec.prepare(world)
    principal = world.principals[role]
    outcome = expected(service, role)
    before = snapshot(engine)

    if outcome == OK:
        result = spec.call(world, principal, prepared, False)
        check_result(world, service, result)
        if not spec.writes:
            assert snapshot(engine) == before, "a read wrote something"
        return

    if outcome == OWN_TENANT:
        acme = snapshot(engine, world.tenant)
        result = spec.call(world, principal, prepared, False)
        created = result["subscription"]["id"]
        assert created.startswith("sub_"), result
        assert snapshot(engine, world.tenant) == acme, "a rival's call changed acme's store"
        with pytest.raises(NotFound):
            subscriptions.get_subscription(
                engine, world.principals["owner"], created, at=world.at(CALL_DAY)
            )
        seen = subscriptions.get_subscription(engine, principal, created, at=world.at(CALL_DAY))
        assert seen["account"] == "corp", seen
        return

    error = {FORBIDDEN: Forbidden, NOT_FOUND: NotFound, WRONG_DECISION: InvalidRequest}[outcome]
    with pytest.raises(ServiceError) as refused:
        spec.call(world, principal, prepared, False)
    assert type(refused.value) is error, refused.value
    assert refused.value.code == outcome, refused.value
    assert snapshot(engine) == before, "a refused call changed the store"

    if outcome == NOT_FOUND:
        # must not learn that s1 exists: the same answer as for a subject that does not exist
        with pytest.raises(ServiceError) as missing:
            spec.call(world, principal, prepared, True)
        same_error(refused.value, missing.value, spec.names(prepared))
        assert snapshot(engine) == before


# audit ------------------------------------------------------------------------------------


def _audit_case(service: str, role: str):
    return pytest.param(service, role, id=f"{service}-{role}")


AUDITED = [
    _audit_case(service, role)
    for service, spec in SERVICES.items()
    if spec.writes
    for role in ROLES
    if expected(service, role) == OK
]


@pytest.mark.parametrize(("service", "role"), AUDITED)
def test_allowed_changes_are_audited(engine, service, role):
    """Staff changes are audited as on behalf of corp; a customer's own change is not."""
    world = build(engine)
    spec = SERVICES[service]
    prepared = spec.prepare(world)
    principal = world.principals[role]
    audit_id = last_audit_id(engine)
    spec.call(world, principal, prepared, False)
    rows = audit_rows_after(engine, audit_id)
    assert rows, f"{service} by {role} wrote no audit_log row"
    staff = role in STAFF
    corp = account_id(world, "corp")
    for row in rows:
        assert row.tenant_id == world.tenant
        assert row.actor_user_id == world.users.get(role), row
        assert row.on_behalf_of == (corp if staff else None), row
        assert row.actor_role == ("support" if role == "token" else role), row
        assert row.at is not None


# beyond the matrix -----------------------------------------------------------------------


@pytest.fixture
def world(engine):
    return build(engine)


def test_a_member_may_read_but_not_preview(world):
    member = world.principals["member"]
    seen = subscriptions.get_subscription(world.engine, member, "s1", at=world.at(CALL_DAY))
    assert seen["plan"] == "standard-monthly" and seen["quantity"] == 2
    with pytest.raises(Forbidden) as refused:
        subscriptions.preview(
            world.engine, member, ChangeInput("s1", plan="premium-monthly"), at=world.at(CALL_DAY)
        )
    assert refused.value.status == 403 and refused.value.details == {
        "role": "member",
        "account": "corp",
    }


@pytest.mark.parametrize(
    "service", ["get_subscription", "preview", "checkout", "cancel", "decide.approve"]
)
def test_another_tenants_token_cannot_reach_acme(world, service):
    """Staff rights stop at the tenant: a token of the rival tenant sees none of acme."""
    spec = SERVICES[service]
    prepared = spec.prepare(world)
    token = Principal(world.other_tenant, kind="token")
    before = snapshot(world.engine)
    with pytest.raises(NotFound) as refused:
        spec.call(world, token, prepared, False)
    with pytest.raises(NotFound) as missing:
        spec.call(world, token, prepared, True)
    same_error(refused.value, missing.value, spec.names(prepared))
    assert snapshot(world.engine) == before


@pytest.mark.parametrize(
    "role",
    ["stranger", "rival"],
)
def test_invisible_and_missing_raise_identical_errors(world, role):
    """The whole error, details included, is the same for s1 (not visible) and s999."""
    principal = world.principals[role]
    errors = []
    for key in ("s1", MISSING_SUBSCRIPTION):
        with pytest.raises(NotFound) as refused:
            subscriptions.get_subscription(world.engine, principal, key, at=world.at(CALL_DAY))
        errors.append(refused.value)
    real, missing = errors
    same_error(real, missing, ("s1", MISSING_SUBSCRIPTION))
    assert real.details == {
        name: (value.replace(MISSING_SUBSCRIPTION, "s1") if isinstance(value, str) else value)
        for name, value in missing.details.items()
    }


def test_subscribe_does_not_reveal_another_accounts_subscription_key(world):
    """The stranger subscribes their own account under s1 (corp's) and under s999: the
    answers must not differ in a way that tells that s1 exists."""
    stranger = world.principals["stranger"]
    outcomes = []
    for key in ("s1", MISSING_SUBSCRIPTION):
        try:
            result = subscriptions.subscribe(
                world.engine,
                stranger,
                subscription=key,
                account="other",
                plan="standard-monthly",
                at=world.at(CALL_DAY),
            )
            outcomes.append(("ok", result["subscription"]["account"]))
        except ServiceError as exc:
            outcomes.append((type(exc).__name__, exc.code, exc.message.replace(key, "<key>")))
    assert outcomes[0] == outcomes[1], outcomes
