"""Schemathesis against the API, inside the suite, on SQLite and PostgreSQL.

Every operation of the OpenAPI document (loaded from the ASGI app with
``schemathesis.openapi.from_asgi``) is fuzzed with positive and negative data, bounded and
reproducible (``derandomize=True``, ``EXAMPLES`` cases per operation and mode), and every
response must pass:

- ``not_a_server_error``: no 5xx, whatever the input (an unexpected exception also comes
  out of the ASGI transport and fails the test);
- ``problem_details`` (below): every 4xx is ``application/problem+json`` with ``type``,
  ``title``, ``status`` (the response's), ``detail`` and ``code``, and a
  ``Content-Language`` that is the one asked for;
- Schemathesis' schema checks: documented status code and content type, a body that
  conforms to the documented schema, and negative (schema-invalid) data refused with a 4xx.

Each operation is one test that runs, on one world: an API token with every scope in
English; the same token with ``Accept-Language: fr``, where every 4xx is sent again in
English and must be refused the same way (status, code) in other words (detail); and the
``owner``'s portal session (a customer, who sees one account of the tenant).

Path parameters are drawn by Schemathesis or taken from the ids that exist (``s1``, ``s2``
of another account, ``s3`` with a pending request, ``corp``, the users, the open cart, the
webhook endpoint, the invoices); positive bodies name existing accounts, subscriptions,
users and plans half of the time. So the fuzzing reaches the services, not only the 404s.

The bugs the fuzzing found have regression tests at the end (NUL characters, long request
ids, ids beyond 64 bits, unknown accounts, untranslated messages). The database is migrated once per
module and kind; each test builds its own world (two new tenants). About 20 s on SQLite
and 25 s on PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import fastapi.routing
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, select

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine
from prorata.services import carts, messages, seats, subscriptions, webhooks
from prorata.services.subscriptions import ChangeInput
from prorata.web.app import create_app
from prorata.web.problems import MEDIA_TYPE, TYPE_BASE
from tests.api.conftest import make_credentials
from tests.conftest import migrated_database
from tests.store.world import START, World, build

# The document does not depend on the database: it is read from an app over an engine that
# is never connected, at collection, so that every operation is a test of its own.
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", create_app(create_engine("sqlite://")))
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}

EXAMPLES = {"token": 15, "fr": 5, "owner": 8}  # per operation and generation mode
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Logging out ends the owner's session: the examples after it would only read 401.
NOT_AS_OWNER = {"DELETE /v1/session"}


# one migrated database and one app per kind; a fresh world per test ----------------------

_ENGINES: list = []  # kept alive to the end: build() names its tenants after id(engine)


@dataclass
class Service:
    """The app under test, over the module's database; its clock stands still at ``now``."""

    url: str
    app: object = None
    now: datetime | None = None

    def clock(self) -> datetime | None:
        return self.now


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request, tmp_path_factory):
    yield from migrated_database(request.param, request, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def service(store_url):
    """One app per database kind: Schemathesis' ASGI transport keeps each app it served
    (and its lifespan) to the end of the process."""
    engine = make_engine(store_url)
    holder = Service(store_url)
    holder.app = create_app(engine, clock=holder.clock)
    yield holder
    engine.dispose()


@pytest.fixture
def engine(service):
    """Overrides the conftest's ``engine``: a new engine object on the module's database."""
    engine = make_engine(service.url)
    _ENGINES.append(engine)
    yield engine
    engine.dispose()


@dataclass
class Fuzzed:
    world: World
    credentials: dict[str, str]
    known: dict[str, list]  # kind of id -> ids that exist (first: visible to the owner)


PLANS = ["standard-monthly", "premium-monthly", "standard-annual", "premium-annual"]


def prepare(engine, service: Service) -> Fuzzed:
    """The small world, plus something behind every kind of id: a pending request (on s3),
    a held seat, an open cart with an item, a webhook endpoint, a subscription of another
    account (s2)."""
    world = build(engine)
    owner, token = world.principals["owner"], world.principals["token"]
    for key, account in (("s2", "other"), ("s3", "corp")):
        subscriptions.subscribe(
            engine,
            token,
            subscription=key,
            account=account,
            plan="standard-monthly",
            quantity=2,
            billing_day=15,
            at=START,
        )
    upgrade = subscriptions.checkout(
        engine, owner, [ChangeInput("s3", plan="premium-monthly")], at=world.at(16)
    )
    assert upgrade["status"] == "completed", upgrade
    cut = subscriptions.checkout(
        engine, owner, [ChangeInput("s3", plan="standard-monthly")], at=world.at(18)
    )
    request_number = cut["items"][0]["request"]["number"]
    seats.assign(engine, owner, "s1", world.users["member"], at=world.at(18))
    cart = carts.create_cart(engine, owner, account="corp", at=world.at(19))["id"]
    carts.put_item(engine, owner, cart, ChangeInput("s1", quantity=3), at=world.at(19))
    endpoint = webhooks.create_endpoint(
        engine, token, url="https://hooks.example/prorata", topics=None, at=world.at(19)
    )["id"]
    with engine.connect() as connection:
        numbers = dict(
            connection.execute(
                select(t.documents.c.type, t.documents.c.number)
                .where(t.documents.c.tenant_id == world.tenant)
                .order_by(t.documents.c.id)
            ).all()
        )
    service.now = world.at(20)
    users = world.users
    known = {
        "subscription": ["s1", "s2", "s3"],
        "account": ["corp", "other"],
        "user": [users["member"], users["stranger"], users["owner"], users["rival"]],
        "cart": [cart],
        "request": [request_number, request_number + 1],
        "invoice": [numbers.get("invoice", "INV-0001"), "INV-0099"],
        "credit_note": [numbers.get("credit_note", "CN-0001")],
        "endpoint": [endpoint, endpoint + 1],
        "payment": [1],
        "plan": PLANS,
        "url": ["https://hooks.example/fuzzed"],
    }
    return Fuzzed(world, make_credentials(world, world.at(20)), known)


def known_values(fuzzed: Fuzzed, path: str, name: str) -> list:
    """Existing ids for path parameter ``name`` of ``path``."""
    if name == "number":
        for prefix, kind in (
            ("/v1/requests", "request"),
            ("/v1/invoices", "invoice"),
            ("/v1/credit-notes", "credit_note"),
        ):
            if path.startswith(prefix):
                return fuzzed.known[kind]
        raise AssertionError(f"no known {name} for {path}")
    if name == "decision":
        return []  # an enum: Schemathesis draws it
    if name not in fuzzed.known:
        raise AssertionError(f"no known ids for path parameter {name} of {path}")
    return fuzzed.known[name]


BODY_IDS = ("account", "subscription", "user", "plan", "url")  # body fields naming something


@st.composite
def with_known_body_ids(draw, base, fuzzed: Fuzzed):
    """A positive case whose body names existing things half of the time (an account, a
    subscription, a user, a plan, a URL that is one), so that creations and checkouts get
    past the 404s."""
    case = draw(base)
    if not isinstance(case.body, dict) or not draw(st.booleans()):
        return case
    body = dict(case.body)
    for name in BODY_IDS:
        if name in body:
            body[name] = draw(st.sampled_from(fuzzed.known[name]))
    if isinstance(body.get("items"), list):
        body["items"] = [
            {**item, "subscription": draw(st.sampled_from(fuzzed.known["subscription"]))}
            if isinstance(item, dict)
            else item
            for item in body["items"]
        ]
    case.body = body
    return case


def cases(operation, mode: GenerationMode, fuzzed: Fuzzed):
    """Cases of ``operation``: all drawn by Schemathesis, or with existing path ids (and,
    for positive data, existing ids in the body)."""
    names = [p.name for p in operation.path_parameters]
    candidates = {name: known_values(fuzzed, operation.path, name) for name in names}
    candidates = {name: values for name, values in candidates.items() if values}
    strategies = [operation.as_strategy(mode)]
    for index in range(max((len(v) for v in candidates.values()), default=0)):
        fixed = {name: values[min(index, len(values) - 1)] for name, values in candidates.items()}
        strategies.append(operation.as_strategy(mode, path_parameters=fixed))
    drawn = st.one_of(strategies)
    return with_known_body_ids(drawn, fuzzed) if mode == GenerationMode.POSITIVE else drawn


# checks ----------------------------------------------------------------------------------

PROBLEM_FIELDS = {"type": str, "title": str, "status": int, "detail": str, "code": str}


def problem_details(ctx, response, case) -> None:
    """A 4xx is a problem (RFC 9457) with a stable code, in the language asked for."""
    if not 400 <= response.status_code < 500:
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert media_type == MEDIA_TYPE, f"{response.status_code} answered as {media_type!r}"
    body = json.loads(response.content)
    for name, kind in PROBLEM_FIELDS.items():
        assert isinstance(body.get(name), kind), f"problem field {name!r}: {body!r}"
    assert body["status"] == response.status_code, body
    assert body["code"] and body["title"].strip() and body["detail"].strip(), body
    assert body["type"] == TYPE_BASE + body["code"], body
    asked = (case.headers or {}).get("Accept-Language", "en")
    language = response.headers.get("content-language", [""])[0]
    assert language == asked, f"Content-Language {language!r}, asked for {asked!r}"


CHECKS = [
    not_a_server_error,  # a 5xx also surfaces as the app's exception, raised by the transport
    problem_details,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

SETTINGS = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: reproducible in CI
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


def modes(operation) -> tuple[GenerationMode, ...]:
    """Negative data needs something to negate besides the credentials."""
    negatable = (
        list(operation.path_parameters)
        or list(operation.query)
        or list(operation.body)
        or [h for h in operation.headers if h.name != "Authorization"]
    )
    return MODES if negatable else MODES[:1]


def fuzz(operation, service: Service, fuzzed: Fuzzed, who: str, language: str, examples: int):
    """``examples`` cases per generation mode, as ``who``, reading ``language``."""
    headers = {
        "Authorization": f"Bearer {fuzzed.credentials[who]}",
        "Accept-Language": language,
    }
    for mode in modes(operation):

        @settings(SETTINGS, max_examples=examples)
        @given(case=cases(operation, mode, fuzzed))
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(app=service.app)
            case.validate_response(response, checks=CHECKS, headers=headers)
            if language != "en" and 400 <= response.status_code < 500:
                translated(case, response, service)

        run()


def translated(case, response, service: Service) -> None:
    """The same request in English is refused the same way, in other words (a refused
    request changes nothing, so it can be sent again)."""
    english = case.call(app=service.app, headers={"Accept-Language": "en"})
    problem, en = json.loads(response.content), json.loads(english.content)
    assert (english.status_code, en["code"]) == (response.status_code, problem["code"]), en
    assert problem["detail"] != en["detail"], f"not translated: {problem!r}"


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation(engine, service, label):
    """Every operation: as a token in English, then in French, then as the owner."""
    operation = OPERATIONS[label]
    fuzzed = prepare(engine, service)
    fuzz(operation, service, fuzzed, "token", "en", EXAMPLES["token"])
    fuzz(operation, service, fuzzed, "token", "fr", EXAMPLES["fr"])
    if label not in NOT_AS_OWNER:
        fuzz(operation, service, fuzzed, "owner", "en", EXAMPLES["owner"])


def test_every_route_is_fuzzed():
    """Every route of the app under /v1 is an operation of the document, hence a test above
    (a route left out of the document would escape the fuzzing)."""
    app = create_app(create_engine("sqlite://"))  # never connected: only the routes are read
    contexts = getattr(fastapi.routing, "iter_route_contexts", iter)(app.routes)
    routes = {
        f"{method} {route.path}"
        for route in contexts
        if (getattr(route, "path", None) or "").startswith("/v1/")
        for method in (getattr(route, "methods", None) or set()) - {"HEAD"}
    }
    assert len(routes) >= 40
    assert routes - set(OPERATIONS) == set()


# bugs found by the fuzzing ---------------------------------------------------------------


def _problem(response) -> dict:
    assert response.headers["content-type"].startswith(MEDIA_TYPE), response.text
    return response.json()


def test_listing_the_subscriptions_of_an_unknown_account_is_not_found(api):
    response = api.client.get("/v1/subscriptions?account=nope", headers=api.headers("token"))
    assert response.status_code == 404, response.text
    assert _problem(response)["code"] == "not_found"


def test_a_reused_idempotency_key_is_explained(api):
    """Found by the French run: the detail was the key itself (fixed in ccd67c8)."""
    headers = api.headers("token", **{"Idempotency-Key": "k-1", "Accept-Language": "fr"})
    first = api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=headers)
    assert first.status_code == 200, first.text
    again = api.client.post(
        "/v1/subscriptions/s1/cancel", json={"timing": "immediate"}, headers=headers
    )
    assert again.status_code == 422, again.text
    problem = _problem(again)
    assert problem["code"] == "idempotency_key_reused"
    assert problem["detail"] == messages.render("idempotency_key_reused", "fr", {"key": "k-1"})


def test_a_wrong_decision_is_explained_in_french(api):
    world = api.world
    owner = world.principals["owner"]
    subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="premium-monthly")], at=world.at(16)
    )
    cut = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="standard-monthly")], at=world.at(18)
    )
    number = cut["items"][0]["request"]["number"]
    details = {}
    for language in ("en", "fr"):
        headers = api.headers("token", **{"Accept-Language": language})
        response = api.client.post(f"/v1/requests/{number}/fulfil", headers=headers)
        assert response.status_code == 400, response.text
        details[language] = _problem(response)["detail"]
        assert _problem(response)["code"] == "wrong_decision"
    assert details["fr"] != details["en"], details


def test_an_undecodable_body_is_refused_in_french(api):
    """Found by the French run: FastAPI's English 'There was an error parsing the body'
    came through (fixed in ccd67c8)."""
    details = {}
    for language in ("en", "fr"):
        headers = api.headers(
            "token", **{"Accept-Language": language, "Content-Type": "application/json"}
        )
        response = api.client.post("/v1/users", content=b'{"email": "\xff@x.y"}', headers=headers)
        assert response.status_code == 400, response.text
        problem = _problem(response)
        assert problem["code"] == "unreadable_body", problem
        details[language] = problem["detail"]
    assert details["fr"] != details["en"], details


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/users", {"email": "nul@example.com", "name": "a\x00b"}),
        ("POST", "/v1/accounts", {"id": "nul", "name": "a\x00b"}),
        ("POST", "/v1/carts", {"account": "a\x00b"}),
        ("GET", "/v1/subscriptions/s%00x", None),
        ("GET", "/v1/invoices?account=a%00b", None),
    ],
    ids=["user-name", "account-name", "cart-account", "subscription-id", "account-filter"],
)
def test_a_nul_character_is_not_a_server_error(api, request, method, path, body):
    response = api.client.request(method, path, json=body, headers=api.headers("token"))
    assert response.status_code < 500, response.text


def test_a_long_request_id_is_not_a_server_error(api, request):
    headers = api.headers("token", **{"X-Request-Id": "r" * 101})
    response = api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=headers)
    assert response.status_code < 500, response.text


BIG = 2**63  # one more than the largest 64-bit integer
INT4 = 2**31  # one more than the largest 32-bit integer (request numbers)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/requests/{BIG}", None),
        ("POST", f"/v1/requests/{BIG}/approve", None),
        ("GET", f"/v1/payments/{BIG}/receipt", None),
        ("PUT", f"/v1/accounts/corp/members/{BIG}", {"role": "member"}),
        ("DELETE", f"/v1/subscriptions/s1/seats/{BIG}", None),
        ("POST", "/v1/subscriptions/s1/seats", {"user": BIG}),
        ("POST", "/v1/portal-sessions", {"user": BIG}),
    ],
    ids=["request", "decision", "receipt", "member", "seat-release", "seat-user", "session-user"],
)
def test_an_id_beyond_64_bits_is_not_found(api, method, path, body):
    response = api.client.request(method, path, json=body, headers=api.headers("token"))
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("decision", ["", "/approve"])
def test_a_request_number_beyond_32_bits_is_not_found(api, request, decision):
    method = "POST" if decision else "GET"
    response = api.client.request(
        method, f"/v1/requests/{INT4}{decision}", headers=api.headers("token")
    )
    assert response.status_code == 404, response.text
