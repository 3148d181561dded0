"""Services on the store: preview equals checkout, carts, versions, idempotency, requests,
seats, audit and outbox; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.services import requests, seats, subscriptions
from prorata.services.errors import Conflict, IdempotencyMismatch, InvalidRequest, Refused
from prorata.services.subscriptions import ChangeInput
from tests.store.world import build


@pytest.fixture
def world(engine):
    return build(engine)


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_preview_then_checkout_bill_the_same_lines(world):
    owner = world.principals["owner"]
    change = ChangeInput("s1", plan="premium-monthly", quantity=3)
    at = world.at(20)
    preview = subscriptions.preview(world.engine, owner, change, at=at)
    assert preview["allowed"], preview
    assert count(world.engine, t.orders) == 0  # a preview writes nothing
    result = subscriptions.checkout(
        world.engine,
        owner,
        [ChangeInput("s1", plan="premium-monthly", quantity=3, expected_version=2)],
        at=at,
    )
    item = result["items"][0]
    assert item["status"] == "applied"
    invoice = item["documents"][-1]
    assert [line["amount"] for line in invoice["lines"]] == [
        line["amount"] for line in preview["quote"]["lines"]
    ]
    assert invoice["total"] == "86.90"  # the seed's numbers (004)
    assert item["version"] == preview["version"] + 1


def test_a_stale_version_is_a_conflict_and_changes_nothing(world):
    owner = world.principals["owner"]
    subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", quantity=3, expected_version=2)], at=world.at(20)
    )
    documents = count(world.engine, t.documents)
    with pytest.raises(Conflict) as err:
        subscriptions.checkout(
            world.engine,
            owner,
            [ChangeInput("s1", quantity=4, expected_version=2)],
            at=world.at(21),
        )
    assert err.value.details == {"subscription": "s1", "expected": 2, "found": 3}
    assert count(world.engine, t.documents) == documents


def test_idempotent_replay_returns_the_first_response(world):
    owner = world.principals["owner"]
    cart = [ChangeInput("s1", quantity=3)]
    first = subscriptions.checkout(world.engine, owner, cart, at=world.at(20), key="k-1")
    again = subscriptions.checkout(world.engine, owner, cart, at=world.at(21), key="k-1")
    assert again == first
    assert count(world.engine, t.orders) == 1
    with pytest.raises(IdempotencyMismatch):
        subscriptions.checkout(
            world.engine, owner, [ChangeInput("s1", quantity=4)], at=world.at(21), key="k-1"
        )


def test_a_refused_item_rolls_back_the_whole_cart(world):
    owner = world.principals["owner"]
    subscriptions.subscribe(
        world.engine,
        world.principals["token"],
        subscription="s2",
        account="corp",
        plan="standard-monthly",
        quantity=2,
        billing_day=15,
        at=world.at(16, month=1),
    )
    before = count(world.engine, t.documents), count(world.engine, t.subscription_terms)
    with pytest.raises(Refused) as err:
        subscriptions.checkout(
            world.engine,
            owner,
            [ChangeInput("s1", quantity=5), ChangeInput("s2", quantity=2)],
            at=world.at(20),
        )
    assert err.value.code == "no_change" and err.value.details["item"] == 1
    after = count(world.engine, t.documents), count(world.engine, t.subscription_terms)
    assert after == before


def test_tier_cut_waits_for_support_then_applies(world):
    owner, support = world.principals["owner"], world.principals["support"]
    result = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="premium-monthly")], at=world.at(20)
    )
    assert result["items"][0]["status"] == "applied"
    result = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", plan="standard-monthly")], at=world.at(22)
    )
    assert result["status"] == "requested"
    number = result["items"][0]["request"]["number"]
    with pytest.raises(Exception) as err:
        requests.decide(world.engine, owner, number, "approve", at=world.at(23))
    assert err.value.code == "forbidden"
    decided = requests.decide(world.engine, support, number, "approve", at=world.at(23))
    assert decided["request"]["state"] == "approved"
    sub = subscriptions.get_subscription(world.engine, owner, "s1", at=world.at(23))
    assert sub["plan"] == "standard-monthly"
    with world.engine.connect() as connection:
        rows = connection.execute(
            select(t.audit_log.c.action, t.audit_log.c.on_behalf_of).order_by(t.audit_log.c.id)
        ).all()
    assert rows[-1].action == "request.approve" and rows[-1].on_behalf_of is not None
    assert count(world.engine, t.outbox) >= 4


def test_seats_are_assigned_and_protect_reductions(world):
    owner = world.principals["owner"]
    for role in ("owner", "billing_contact"):
        seats.assign(world.engine, owner, "s1", world.users[role], at=world.at(16))
    with pytest.raises(Refused) as err:
        seats.assign(world.engine, owner, "s1", world.users["member"], at=world.at(16))
    assert err.value.code == "no_seat_available"
    with pytest.raises(Refused) as err:
        subscriptions.checkout(
            world.engine, owner, [ChangeInput("s1", quantity=1)], at=world.at(17)
        )
    assert err.value.code == "seats_assigned"
    seats.release(world.engine, owner, "s1", world.users["billing_contact"], at=world.at(17))
    result = subscriptions.checkout(
        world.engine, owner, [ChangeInput("s1", quantity=1)], at=world.at(17)
    )
    assert result["items"][0]["status"] == "applied"


def test_customers_subscribe_under_an_id_prorata_chooses(world):
    owner = world.principals["owner"]
    with pytest.raises(InvalidRequest) as err:
        subscriptions.subscribe(
            world.engine,
            owner,
            subscription="mine",
            account="corp",
            plan="standard-monthly",
            at=world.at(16),
        )
    assert err.value.code == "id_not_allowed"
    created = subscriptions.subscribe(
        world.engine, owner, account="corp", plan="standard-monthly", at=world.at(16)
    )
    assert created["subscription"]["id"].startswith("sub_")
    assert created["documents"][0]["total"] == "45.00"


def test_a_billing_time_the_engine_does_not_know_is_refused_by_name(world):
    with pytest.raises(InvalidRequest) as err:
        subscriptions.subscribe(
            world.engine,
            world.principals["owner"],
            account="corp",
            plan="standard-monthly",
            billing_time="weekly",
            at=world.at(16),
        )
    assert err.value.code == "unknown_billing_time"
    assert err.value.message_in("fr") == "Le calage 'weekly' n'est ni anniversary ni calendar."


def test_bad_input_names_the_field(world):
    owner = world.principals["owner"]
    with pytest.raises(InvalidRequest) as err:
        subscriptions.checkout(
            world.engine, owner, [ChangeInput("s1", quantity=0)], at=world.at(17)
        )
    assert err.value.code == "quantity_invalid"
