"""Delivering the outbox to real HTTP receivers: fan-out, signatures, retries with backoff,
leases, several dispatchers at once; on SQLite and PostgreSQL.

The dispatcher's clock is a :class:`Clock` the tests move; the receiver checks signatures
at the same clock's time. The receiver listens on 127.0.0.1, so these dispatchers may reach
private addresses (:data:`LOCAL`); ``test_destinations.py`` checks that by default they may
not.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import structlog
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.destinations import Destinations
from prorata.adapters.webhook_delivery import Dispatcher, backoff
from prorata.core import signing
from prorata.services import subscriptions, webhooks
from prorata.services.access import Principal
from prorata.services.subscriptions import ChangeInput
from tests.store.world import World, build
from tests.webhooks.receiver import Clock, Receiver

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
LOCAL = Destinations(private=True)  # the receiver is on 127.0.0.1


@pytest.fixture
def world(engine) -> World:
    return build(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def receiver(clock):
    receiver = Receiver(clock).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def dispatchers(world, clock):
    """Make dispatchers on the world's engine and the test clock; closed afterwards."""
    made: list[Dispatcher] = []

    def make(**kwargs) -> Dispatcher:
        kwargs.setdefault("destinations", LOCAL)
        dispatcher = Dispatcher(world.engine, now=clock, **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def endpoint(world, receiver, path, topics=None, principal=None) -> dict:
    """A webhook endpoint pointing at ``path`` on the receiver, which learns its secret."""
    created = webhooks.create_endpoint(
        world.engine,
        principal or world.principals["token"],
        url=receiver.url(path),
        topics=topics,
        at=world.at(16),
    )
    receiver.secrets[path] = created["secret"]
    return created


def checkout(world, day: int) -> None:
    """s1 grows to ``day`` seats (more than before): a subscription.change.applied and an
    invoice.issued event."""
    subscriptions.checkout(
        world.engine,
        world.principals["owner"],
        [ChangeInput("s1", quantity=day)],
        at=world.at(day),
    )


def events(engine, tenant: int, topic: str | None = None) -> set[str]:
    query = select(t.outbox.c.id).where(t.outbox.c.tenant_id == tenant)
    if topic is not None:
        query = query.where(t.outbox.c.topic == topic)
    with engine.connect() as connection:
        return {f"evt_{i}" for i in connection.execute(query).scalars()}


def deliveries(engine, endpoint_id: int) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(t.webhook_deliveries)
            .where(t.webhook_deliveries.c.endpoint_id == endpoint_id)
            .order_by(t.webhook_deliveries.c.id)
        ).all()


def attempts_of(engine, delivery_id: int) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(t.webhook_attempts)
            .where(t.webhook_attempts.c.delivery_id == delivery_id)
            .order_by(t.webhook_attempts.c.id)
        ).all()


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def once_each(ids) -> Counter:
    return Counter(dict.fromkeys(ids, 1))


def test_backoff_doubles_from_30_seconds_and_stops_at_6_hours():
    assert [backoff(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 480, 960]
    assert backoff(10) == timedelta(seconds=30 * 2**9)
    assert backoff(11) == backoff(12) == backoff(1000) == timedelta(hours=6)


def test_a_lease_must_outlast_the_request_timeout(engine):
    with pytest.raises(ValueError, match="lease_seconds"):
        Dispatcher(engine, timeout=10, lease_seconds=10)


def test_every_event_reaches_every_matching_endpoint_signed_and_verified(
    world, receiver, dispatchers, clock
):
    everything = endpoint(world, receiver, "/all")
    invoices = endpoint(world, receiver, "/invoices", ["invoice.issued"])
    rival = endpoint(world, receiver, "/rival", ["*"], Principal(world.other_tenant, "token"))
    gone = endpoint(world, receiver, "/gone", ["*"])
    webhooks.delete_endpoint(world.engine, world.principals["token"], gone["id"], at=world.at(16))
    checkout(world, 17)
    checkout(world, 18)
    dispatcher = dispatchers()

    published, attempted = dispatcher.run_until_idle()

    all_events = events(world.engine, world.tenant)
    invoice_events = events(world.engine, world.tenant, "invoice.issued")
    # subscribe (2 events), the renewal of Feb 15 caught up by the first checkout (2), two
    # changes (2 each): 8 events, 4 of them invoices
    assert len(all_events) == 8 and len(invoice_events) == 4
    assert (published, attempted) == (8, 12)
    assert receiver.accepted("/all") == once_each(all_events)
    assert receiver.accepted("/invoices") == once_each(invoice_events)
    assert receiver.accepted("/rival") == Counter()  # another tenant's events
    assert receiver.accepted("/gone") == Counter()  # deleted before fan-out
    assert not deliveries(world.engine, rival["id"]) and not deliveries(world.engine, gone["id"])
    with world.engine.connect() as connection:
        outbox = {
            f"evt_{row.id}": row
            for row in connection.execute(
                select(t.outbox).where(t.outbox.c.tenant_id == world.tenant)
            )
        }
    for seen in receiver.all():
        assert seen.verified, seen.reason
        assert seen.header_event_id == seen.event_id
        assert seen.user_agent == "prorata-webhooks"
        assert seen.content_type == "application/json"
        row = outbox[seen.event_id]
        assert seen.body == {
            "id": seen.event_id,
            "type": row.topic,
            "created_at": row.created_at.isoformat(),
            "data": json.loads(row.payload),
        }
        assert seen.signature.startswith(f"t={clock.unix()},v1=")
    for made in (everything, invoices):
        for delivery in deliveries(world.engine, made["id"]):
            assert (delivery.status, delivery.attempts) == ("delivered", 1)
            assert delivery.delivered_at == START
            assert [a.status_code for a in attempts_of(world.engine, delivery.id)] == [200]
    logged = webhooks.list_deliveries(
        world.engine, world.principals["token"], invoices["id"], at=world.at(20)
    )
    assert {d["event_id"] for d in logged} == invoice_events
    assert all(d["topic"] == "invoice.issued" and d["status"] == "delivered" for d in logged)
    assert all(d["attempt_log"][0]["status_code"] == 200 for d in logged)

    assert dispatcher.run_once() == (0, 0)  # nothing twice
    checkout(world, 19)
    assert dispatcher.run_until_idle() == (2, 3)
    assert receiver.accepted("/all") == once_each(events(world.engine, world.tenant))


def test_a_failing_receiver_is_retried_with_growing_backoff_then_marked_failed(
    world, receiver, dispatchers, clock
):
    receiver.status = 500
    made = endpoint(world, receiver, "/down", ["subscription.created"])
    dispatcher = dispatchers(max_attempts=4)
    assert dispatcher.run_once() == (2, 1)
    for wait in (30, 60, 120):
        clock.advance(wait - 1)
        assert dispatcher.run_once() == (0, 0), f"retried before {wait} s"
        clock.advance(1)
        assert dispatcher.run_once() == (0, 1)
    clock.advance(86400)
    assert dispatcher.run_once() == (0, 0)  # failed: no more attempts

    [delivery] = deliveries(world.engine, made["id"])
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    attempts = attempts_of(world.engine, delivery.id)
    assert [a.status_code for a in attempts] == [500] * 4
    assert all(a.error.startswith("HTTP 500") for a in attempts)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == [30, 60, 120]
    [event] = events(world.engine, world.tenant, "subscription.created")
    assert [seen.event_id for seen in receiver.all()] == [event] * 4  # same id each time
    assert all(seen.verified for seen in receiver.all())
    [logged] = webhooks.list_deliveries(
        world.engine, world.principals["token"], made["id"], at=world.at(20)
    )
    assert logged["status"] == "failed" and logged["attempts"] == 4
    assert [a["status_code"] for a in logged["attempt_log"]] == [500] * 4
    assert logged["attempt_log"][0]["at"] == START.astimezone(world.at(1).tzinfo).isoformat()


def test_events_emitted_while_the_receiver_is_down_all_arrive_once_it_is_back(
    world, receiver, dispatchers, clock
):
    first = endpoint(world, receiver, "/a", ["*"])
    second = endpoint(world, receiver, "/b", ["invoice.issued"])
    dispatcher = dispatchers()
    receiver.stop()  # connections refused from now on
    assert dispatcher.run_once() == (2, 3)
    for day in (17, 18, 19):
        checkout(world, day)
        clock.advance(45)
        dispatcher.run_until_idle()
    assert receiver.accepted("/a") == Counter()
    down_attempts = count(world.engine, t.webhook_attempts)
    assert down_attempts > count(world.engine, t.webhook_deliveries)  # retried

    receiver.start()  # the same port
    for _ in range(10):
        clock.advance(backoff(100).total_seconds())
        dispatcher.run_until_idle()

    assert receiver.accepted("/a") == once_each(events(world.engine, world.tenant))
    assert receiver.accepted("/b") == once_each(
        events(world.engine, world.tenant, "invoice.issued")
    )
    assert all(seen.verified for seen in receiver.all())
    for made in (first, second):
        for delivery in deliveries(world.engine, made["id"]):
            assert delivery.status == "delivered"
            log = attempts_of(world.engine, delivery.id)
            assert len(log) == delivery.attempts >= 2
            assert log[-1].status_code == 200
            for failed in log[:-1]:
                assert failed.status_code is None
                assert "ConnectError" in failed.error or failed.error.startswith("not sent")


def test_a_crashed_claim_is_retried_after_its_lease_with_the_same_event_id(
    world, receiver, dispatchers, clock
):
    made = endpoint(world, receiver, "/lease", ["subscription.created"])
    crashed = dispatchers(lease_seconds=60)
    crashed.fan_out()
    [claim] = crashed.claim_due()  # ... and the dispatcher dies before sending

    survivor = dispatchers(lease_seconds=60)
    assert survivor.run_once() == (0, 0)
    clock.advance(59)
    assert survivor.deliver_due() == 0
    clock.advance(1)
    assert survivor.deliver_due() == 1
    assert receiver.accepted("/lease") == Counter({claim.event_id: 1})
    [delivery] = deliveries(world.engine, made["id"])
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(attempts_of(world.engine, delivery.id)) == 1  # the crashed claim sent nothing

    # The dead dispatcher wakes with its stale claim: it neither sends nor undoes anything.
    assert crashed.deliver(claim) is None
    crashed.record(claim, status_code=500, error="HTTP 500", duration_ms=1)
    [after] = deliveries(world.engine, made["id"])
    assert (after.status, after.attempts, after.delivered_at) == (
        "delivered",
        2,
        delivery.delivered_at,
    )
    assert receiver.accepted("/lease") == Counter({claim.event_id: 1})


def test_an_unsent_claim_is_released_without_counting_an_attempt(
    world, receiver, dispatchers, clock
):
    made = endpoint(world, receiver, "/slow", ["subscription.created"])
    dispatcher = dispatchers(lease_seconds=60, timeout=10)
    dispatcher.fan_out()
    [claim] = dispatcher.claim_due()
    clock.advance(51)  # a request now could outlive the lease
    assert dispatcher.deliver(claim) is None
    [delivery] = deliveries(world.engine, made["id"])
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, clock())
    assert dispatcher.deliver_due() == 1
    assert receiver.accepted("/slow") == Counter({claim.event_id: 1})


def test_two_dispatchers_at_once_deliver_each_event_exactly_once(
    world, receiver, dispatchers, clock
):
    endpoints = [endpoint(world, receiver, path, ["*"]) for path in ("/x", "/y")]
    pair = [dispatchers(batch=3), dispatchers(batch=3)]
    producing = threading.Event()
    producing.set()
    barrier = threading.Barrier(3, timeout=30)
    failures: list[BaseException] = []

    def dispatch(dispatcher: Dispatcher) -> None:
        try:
            barrier.wait()
            while True:
                busy = dispatcher.run_once() != (0, 0)
                if not busy and not producing.is_set():
                    if dispatcher.run_once() == (0, 0):
                        return
                elif not busy:
                    time.sleep(0.005)
        except BaseException as exc:
            failures.append(exc)

    def produce() -> None:
        try:
            barrier.wait()
            for day in range(17, 25):
                checkout(world, day)
        except BaseException as exc:
            failures.append(exc)
        finally:
            producing.clear()

    threads = [threading.Thread(target=dispatch, args=(d,), daemon=True) for d in pair]
    threads.append(threading.Thread(target=produce, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a dispatcher never finished"
    assert not failures, failures

    all_events = events(world.engine, world.tenant)
    assert len(all_events) == 20  # subscribe 2, renewal of Feb 15 caught up 2, 8 changes × 2
    for path in ("/x", "/y"):
        assert receiver.accepted(path) == once_each(all_events)
    assert all(seen.verified for seen in receiver.all())
    assert len(receiver.all()) == 40  # no request sent twice
    for made in endpoints:
        rows = deliveries(world.engine, made["id"])
        assert len(rows) == 20
        assert {(row.status, row.attempts) for row in rows} == {("delivered", 1)}
    assert count(world.engine, t.webhook_attempts) == 40


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new_one(
    world, receiver, dispatchers, clock
):
    made = endpoint(world, receiver, "/rot", ["invoice.issued"])
    old = made["secret"]
    rotated = webhooks.rotate_secret(
        world.engine, world.principals["token"], made["id"], at=clock(), overlap_seconds=3600
    )
    new = rotated["secret"]
    dispatcher = dispatchers()
    dispatcher.run_until_idle()  # the receiver still knows only the old secret
    [during] = receiver.all()
    assert during.verified and during.signature.count("v1=") == 2
    signing.verify(during.signature, during.raw, new, now=clock.unix())

    checkout(world, 17)
    clock.advance(3600)  # the overlap is over
    dispatcher.run_until_idle()
    after = receiver.all()[-1]
    assert not after.verified and after.status == 400
    assert after.signature.count("v1=") == 1
    signing.verify(after.signature, after.raw, new, now=clock.unix())
    with pytest.raises(signing.SignatureError):
        signing.verify(after.signature, after.raw, old, now=clock.unix())

    receiver.secrets["/rot"] = new  # the receiver catches up; the retry gets through
    clock.advance(backoff(1).total_seconds())
    dispatcher.run_until_idle()
    assert receiver.accepted("/rot") == once_each(
        events(world.engine, world.tenant, "invoice.issued")
    )


def test_a_paused_endpoint_keeps_its_pending_deliveries_and_misses_new_events(
    world, receiver, dispatchers, clock
):
    made = endpoint(world, receiver, "/p", ["*"])
    token = world.principals["token"]
    dispatcher = dispatchers()
    assert dispatcher.fan_out() == 2
    webhooks.update_endpoint(world.engine, token, made["id"], at=world.at(17), active=False)
    assert dispatcher.deliver_due() == 0
    checkout(world, 18)  # the renewal of Feb 15 caught up, then the change: 4 events
    assert dispatcher.run_once() == (4, 0)
    webhooks.update_endpoint(world.engine, token, made["id"], at=world.at(19), active=True)
    dispatcher.run_until_idle()
    assert len(receiver.accepted("/p")) == 2
    assert all(row.status == "delivered" for row in deliveries(world.engine, made["id"]))


def test_redirects_and_transport_errors_are_failed_attempts(world, dispatchers, clock):
    answers = iter([httpx.Response(302, headers={"Location": "https://elsewhere/"})])
    sent: list[tuple[str, str, str | None, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sni = request.extensions.get("sni_hostname")
        sent.append((str(request.url), request.headers["host"], sni, request.headers["connection"]))
        try:
            return next(answers)
        except StopIteration:
            raise httpx.ReadTimeout("timed out", request=request) from None

    webhooks.create_endpoint(
        world.engine,
        world.principals["token"],
        url="https://hooks.example.com/",
        topics=["subscription.created"],
        at=world.at(16),
    )
    public = Destinations(resolver=lambda host, port: ["93.184.216.34"])  # no DNS in tests
    dispatcher = dispatchers(
        client=httpx.Client(transport=httpx.MockTransport(handler)), destinations=public
    )
    dispatcher.run_once()
    clock.advance(30)
    dispatcher.run_once()
    with world.engine.connect() as connection:
        log = connection.execute(select(t.webhook_attempts).order_by(t.webhook_attempts.c.id)).all()
    assert [(a.status_code, a.error.split(":")[0]) for a in log] == [
        (302, "HTTP 302"),
        (None, "ReadTimeout"),
    ]
    # sent to the address checked, under the endpoint's name (Host, TLS server name)
    name = "hooks.example.com"
    assert sent == [("https://93.184.216.34/", name, name, "close")] * 2


def test_run_forever_survives_errors_and_stops_when_asked(world, receiver, clock):
    made = endpoint(world, receiver, "/forever", ["subscription.created"])
    calls = itertools.count()

    def flaky_now() -> datetime:
        if next(calls) < 2:
            raise RuntimeError("clock unavailable")
        return clock()

    stop = threading.Event()
    with (
        structlog.testing.capture_logs() as logs,
        Dispatcher(world.engine, now=flaky_now, destinations=LOCAL) as d,
    ):
        thread = threading.Thread(target=d.run_forever, args=(stop, 0.01), daemon=True)
        thread.start()
        for _ in range(1000):
            if receiver.accepted("/forever"):
                break
            time.sleep(0.01)
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert sum(receiver.accepted("/forever").values()) == 1
    assert deliveries(world.engine, made["id"])[0].status == "delivered"
    assert [e["event"] for e in logs].count("webhooks.round_failed") == 2
