"""Managing webhook endpoints through the services: who may, what is valid, what is shown,
what is audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.adapters.destinations import Destinations
from prorata.adapters.webhook_delivery import Dispatcher
from prorata.services import webhooks
from prorata.services.access import Principal
from prorata.services.errors import Forbidden, IdempotencyMismatch, InvalidRequest, NotFound
from tests.store.world import build

URL = "https://hooks.example.com/prorata"


@pytest.fixture
def world(engine):
    return build(engine)


@pytest.fixture
def token(world):
    return world.principals["token"]


def create(world, principal=None, **kwargs):
    values = {"url": URL, "topics": ["invoice.issued"], "at": world.at(16)} | kwargs
    return webhooks.create_endpoint(world.engine, principal or world.principals["token"], **values)


def endpoint_row(engine, endpoint_id):
    with engine.connect() as connection:
        return connection.execute(
            select(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id)
        ).one()


def audit_rows(engine, endpoint_id):
    with engine.connect() as connection:
        return connection.execute(
            select(t.audit_log)
            .where(t.audit_log.c.subject == f"webhook_endpoint:{endpoint_id}")
            .order_by(t.audit_log.c.id)
        ).all()


def test_create_shows_the_secret_once_and_reads_never_do(world, token):
    created = create(world, topics=["invoice.issued", "subscription.created"])
    assert created["secret"].startswith("whsec_")
    assert created["secret"] == endpoint_row(world.engine, created["id"]).secret
    assert isinstance(created["id"], int)
    assert created["url"] == URL
    assert created["topics"] == ["invoice.issued", "subscription.created"]
    assert created["active"] is True
    assert created["created_at"] == world.at(16).isoformat()  # ISO, tenant's offset
    shown = webhooks.get_endpoint(world.engine, token, created["id"], at=world.at(17))
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = webhooks.list_endpoints(world.engine, token, at=world.at(17))
    assert listed == [shown]
    assert created["secret"] not in json.dumps(listed)


def test_topics_default_to_everything(world):
    assert create(world, topics=None)["topics"] == ["*"]
    assert create(world, topics=["*"])["topics"] == ["*"]
    assert create(world, topics=["a.b", "a.b", "c"])["topics"] == ["a.b", "c"]


def test_staff_and_tokens_manage_customers_are_forbidden(world):
    for name in ("support", "account_manager"):
        assert create(world, world.principals[name])["active"]
    endpoint = create(world)["id"]
    for name in ("owner", "billing_contact", "member", "stranger"):
        principal = world.principals[name]
        with pytest.raises(Forbidden) as err:
            create(world, principal)
        assert err.value.code == "forbidden"
        calls = [
            lambda p: webhooks.list_endpoints(world.engine, p, at=world.at(17)),
            lambda p: webhooks.get_endpoint(world.engine, p, endpoint, at=world.at(17)),
            lambda p: webhooks.update_endpoint(
                world.engine, p, endpoint, at=world.at(17), active=False
            ),
            lambda p: webhooks.rotate_secret(world.engine, p, endpoint, at=world.at(17)),
            lambda p: webhooks.delete_endpoint(world.engine, p, endpoint, at=world.at(17)),
            lambda p: webhooks.list_deliveries(world.engine, p, endpoint, at=world.at(17)),
        ]
        for call in calls:
            with pytest.raises(Forbidden):
                call(principal)
    assert endpoint_row(world.engine, endpoint).active  # nothing changed


def test_another_tenants_endpoint_is_not_found_like_a_missing_one(world):
    endpoint = create(world)["id"]
    rival = Principal(world.other_tenant, kind="token")
    for missing in (endpoint, 999_999, 0, -1, 2**63, 10**40):
        calls = [
            lambda i: webhooks.get_endpoint(world.engine, rival, i, at=world.at(17)),
            lambda i: webhooks.update_endpoint(
                world.engine, rival, i, at=world.at(17), url="https://evil.example/"
            ),
            lambda i: webhooks.rotate_secret(world.engine, rival, i, at=world.at(17)),
            lambda i: webhooks.delete_endpoint(world.engine, rival, i, at=world.at(17)),
            lambda i: webhooks.list_deliveries(world.engine, rival, i, at=world.at(17)),
        ]
        messages = set()
        for call in calls:
            with pytest.raises(NotFound) as err:
                call(missing)
            assert err.value.code == "not_found"
            messages.add(err.value.message.replace(str(missing), "<id>"))
        assert len(messages) == 1
    assert webhooks.list_endpoints(world.engine, rival, at=world.at(17)) == []
    row = endpoint_row(world.engine, endpoint)
    assert row.url == URL and row.active


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/x", "the scheme must be http or https, not ftp"),
        ("hooks.example.com/x", "the scheme must be http or https, not none"),
        ("javascript:alert(1)", "the scheme must be http or https"),
        ("https://", "it has no host"),
        ("http:///path", "it has no host"),
        ("https://example.com:99999/", "its port is not a number"),
        ("https://exa mple.com/", "contains spaces"),
        ("", "it is empty"),
        (42, "expected a URL as text"),
        ("https://example.com/" + "x" * 2000, "longer than 2000"),
    ],
)
def test_invalid_urls_say_which_value_and_why(url, why):
    with pytest.raises(InvalidRequest) as err:
        webhooks.validate_url(url)
    assert err.value.code == "invalid_url"
    assert err.value.details["field"] == "url"
    assert err.value.details["value"] == url
    assert why in err.value.message
    assert repr(url)[:40] in err.value.message


@pytest.mark.parametrize(
    ("topics", "why"),
    [
        ([], "name at least one topic"),
        ("invoice.issued", "expected a list"),
        ([""], "is not a non-empty topic name"),
        ([3], "is not a non-empty topic name"),
        (["invoice issued"], "contains spaces"),
        (["*", "invoice.issued"], '"*" stands alone'),
        (["invoice.*"], 'only "*" alone is a wildcard'),
        (["x" * 65], "longer than 64"),
    ],
)
def test_invalid_topics_say_which_value_and_why(topics, why):
    with pytest.raises(InvalidRequest) as err:
        webhooks.validate_topics(topics)
    assert err.value.code == "invalid_topics"
    assert err.value.details["value"] == topics
    assert why in err.value.message


def test_the_services_refuse_invalid_input_and_keep_nothing(world, token):
    for url in ("ftp://hooks.example.com/", "https://", "not a url"):
        with pytest.raises(InvalidRequest) as err:
            create(world, url=url)
        assert err.value.code == "invalid_url" and err.value.details["value"] == url
    for topics in ([], ["*", "a"], "a"):
        with pytest.raises(InvalidRequest) as err:
            create(world, topics=topics)
        assert err.value.code == "invalid_topics" and err.value.details["value"] == topics
    assert webhooks.list_endpoints(world.engine, token, at=world.at(17)) == []
    with world.engine.connect() as connection:
        assert (
            connection.execute(
                select(t.audit_log.c.id).where(t.audit_log.c.subject.like("webhook_endpoint:%"))
            ).all()
            == []
        )


def test_update_changes_given_fields_validates_and_audits(world, token):
    endpoint = create(world)["id"]
    updated = webhooks.update_endpoint(
        world.engine,
        token,
        endpoint,
        at=world.at(17),
        url="http://127.0.0.1:9/hook",
        topics=["*"],
    )
    assert (updated["url"], updated["topics"], updated["active"]) == (
        "http://127.0.0.1:9/hook",
        ["*"],
        True,
    )
    assert "secret" not in updated
    paused = webhooks.update_endpoint(world.engine, token, endpoint, at=world.at(18), active=False)
    assert paused["active"] is False and paused["url"] == "http://127.0.0.1:9/hook"
    with pytest.raises(InvalidRequest) as err:
        webhooks.update_endpoint(world.engine, token, endpoint, at=world.at(18), url="mailto:x@y")
    assert err.value.code == "invalid_url"
    with pytest.raises(InvalidRequest) as err:
        webhooks.update_endpoint(world.engine, token, endpoint, at=world.at(18), topics=[])
    assert err.value.code == "invalid_topics"
    with pytest.raises(InvalidRequest) as err:
        webhooks.update_endpoint(world.engine, token, endpoint, at=world.at(18), active="yes")
    assert err.value.code == "invalid_active"
    unchanged = webhooks.update_endpoint(world.engine, token, endpoint, at=world.at(19))
    assert unchanged == paused
    actions = [(row.action, row.actor_role) for row in audit_rows(world.engine, endpoint)]
    assert actions == [
        ("webhook_endpoint.create", "support"),
        ("webhook_endpoint.update", "support"),
        ("webhook_endpoint.update", "support"),
    ]
    last = audit_rows(world.engine, endpoint)[-1]
    assert json.loads(last.before)["active"] is True
    assert json.loads(last.after)["active"] is False


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_the_overlap(world, token):
    created = create(world)
    at = world.at(17)
    rotated = webhooks.rotate_secret(
        world.engine, token, created["id"], at=at, overlap_seconds=3600
    )
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] == (at + timedelta(hours=1)).isoformat()
    row = endpoint_row(world.engine, created["id"])
    assert (row.secret, row.previous_secret) == (rotated["secret"], created["secret"])
    assert row.previous_expires_at == at + timedelta(hours=1)
    shown = webhooks.get_endpoint(world.engine, token, created["id"], at=at)
    assert "secret" not in shown
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    for audit in audit_rows(world.engine, created["id"]):  # secrets never reach the log
        for secret in (created["secret"], rotated["secret"]):
            assert secret not in (audit.before or "") and secret not in (audit.after or "")
    again = webhooks.rotate_secret(world.engine, token, created["id"], at=at, overlap_seconds=0)
    row = endpoint_row(world.engine, created["id"])
    assert (row.secret, row.previous_secret, row.previous_expires_at) == (
        again["secret"],
        None,
        None,
    )
    with pytest.raises(InvalidRequest) as err:
        webhooks.rotate_secret(world.engine, token, created["id"], at=at, overlap_seconds=-1)
    assert err.value.code == "invalid_overlap"


def test_idempotent_create_replays_the_same_endpoint(world, token):
    first = create(world, key="hook-1")
    again = create(world, key="hook-1", at=world.at(18))
    assert again == first
    assert len(webhooks.list_endpoints(world.engine, token, at=world.at(18))) == 1
    with pytest.raises(IdempotencyMismatch):
        create(world, key="hook-1", url="https://other.example/")


def test_delete_deactivates_and_keeps_the_delivery_log(world, token):
    created = create(world, url="http://127.0.0.1:9/unused", topics=["*"])
    clock_at = world.at(17)

    def refuse(request):
        raise OSError("connection refused")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    local = Destinations(private=True)
    with Dispatcher(world.engine, client=client, now=lambda: clock_at, destinations=local) as d:
        d.run_once()
    before = webhooks.list_deliveries(world.engine, token, created["id"], at=clock_at)
    assert len(before) == 2  # subscription.created and its invoice
    assert all(d["attempts"] == 1 and len(d["attempt_log"]) == 1 for d in before)
    deleted = webhooks.delete_endpoint(world.engine, token, created["id"], at=clock_at)
    assert deleted["active"] is False
    assert webhooks.get_endpoint(world.engine, token, created["id"], at=clock_at) == deleted
    assert webhooks.list_endpoints(world.engine, token, at=clock_at) == [deleted]
    assert webhooks.list_deliveries(world.engine, token, created["id"], at=clock_at) == before
    again = webhooks.delete_endpoint(world.engine, token, created["id"], at=clock_at)
    assert again == deleted
    actions = [row.action for row in audit_rows(world.engine, created["id"])]
    assert actions == ["webhook_endpoint.create", "webhook_endpoint.delete"]


def test_list_deliveries_validates_its_limit(world, token):
    endpoint = create(world)["id"]
    for limit in (0, 501, "10", True):
        with pytest.raises(InvalidRequest) as err:
            webhooks.list_deliveries(world.engine, token, endpoint, at=world.at(17), limit=limit)
        assert err.value.code == "invalid_limit"
    assert webhooks.list_deliveries(world.engine, token, endpoint, at=world.at(17)) == []
