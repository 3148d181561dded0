"""Where webhook deliveries may go (``prorata.adapters.destinations``): public addresses
only by default, every address resolved checked, the request sent to the address checked."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.adapters.destinations import ENV, DestinationRefused, Destinations
from prorata.adapters.webhook_delivery import Dispatcher
from prorata.services import webhooks
from tests.store.world import build
from tests.webhooks.receiver import Clock, Receiver
from tests.webhooks.test_delivery import START, deliveries


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as its IPv4 address
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.20", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("100.64.0.1", "not a global address"),  # shared address space (carrier NAT)
        ("192.0.2.1", "private"),  # documentation range
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
    ],
)
def test_addresses_outside_the_public_internet_are_refused(address, why):
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationRefused, match=why) as refused:
        Destinations().target(f"https://{literal}/hook")
    assert f"{address} is" in str(refused.value) and ENV in str(refused.value)
    allowed = Destinations(private=True).target(f"https://{literal}/hook")
    written = ipaddress.ip_address(address)  # as the address is written out again
    assert allowed.url == f"https://{f'[{written}]' if ':' in address else written}/hook"


def test_a_name_is_refused_if_any_of_its_addresses_is_not_public():
    mixed = Destinations(resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(DestinationRefused, match=r"hooks\.example resolves to 10\.0\.0\.7,"):
        mixed.target("https://hooks.example/")


def test_the_request_goes_to_the_address_checked_under_the_endpoint_name():
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["2606:4700::6810:84e5", "93.184.216.34"]

    target = Destinations(resolver=resolver).target("https://ops:pw@Hooks.Example:8443/in?x=1")
    assert asked == [("hooks.example", 8443)]
    assert target.url == "https://ops:pw@[2606:4700::6810:84e5]:8443/in?x=1"
    assert target.headers == {"Host": "Hooks.Example:8443", "Connection": "close"}
    assert target.extensions == {"sni_hostname": "hooks.example"}
    plain = Destinations(resolver=lambda host, port: ["93.184.216.34"]).target("http://a.example/")
    assert (plain.url, plain.headers, plain.extensions) == (
        "http://93.184.216.34/",
        {"Host": "a.example"},
        {},
    )


def test_names_that_do_not_resolve_and_unreadable_urls_are_refused():
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DestinationRefused, match="does not resolve"):
        Destinations(resolver=nowhere).target("https://nowhere.invalid/")
    with pytest.raises(DestinationRefused, match="does not resolve"):
        Destinations(resolver=lambda host, port: ["not-an-address"]).target("https://odd.example/")
    with pytest.raises(DestinationRefused, match="resolves to no address"):
        Destinations(resolver=lambda host, port: []).target("https://empty.example/")
    with pytest.raises(DestinationRefused, match="cannot be read"):
        Destinations().target("https://hooks.example:99999/")
    with pytest.raises(DestinationRefused, match="has no host"):
        Destinations().target("https:///path")


def test_the_operator_allows_private_addresses_with_the_environment():
    assert Destinations.from_env({}).private is False
    assert Destinations.from_env({ENV: ""}).private is False
    assert Destinations.from_env({ENV: "allow"}).private is True
    with pytest.raises(ValueError, match=rf"{ENV}='yes': expected 'allow' or nothing"):
        Destinations.from_env({ENV: "yes"})


@pytest.fixture
def receiver():
    receiver = Receiver(Clock(START)).start()
    yield receiver
    receiver.stop()


def test_by_default_a_dispatcher_sends_nothing_to_a_loopback_endpoint(
    engine, receiver, monkeypatch
):
    monkeypatch.delenv(ENV, raising=False)
    world = build(engine)
    made = webhooks.create_endpoint(
        world.engine,
        world.principals["token"],
        url=receiver.url("/inside"),
        topics=["subscription.created"],
        at=world.at(16),
    )
    receiver.secrets["/inside"] = made["secret"]
    with Dispatcher(world.engine, now=receiver.clock) as dispatcher:
        dispatcher.run_once()
    assert receiver.all() == []  # nothing reached it
    rows = deliveries(world.engine, made["id"])
    assert rows and all(row.status == "pending" and row.attempts == 1 for row in rows)
    with world.engine.connect() as connection:
        errors = connection.execute(select(t.webhook_attempts.c.error)).scalars().all()
    assert errors and all(
        error.startswith("DestinationRefused: 127.0.0.1 is a loopback address") for error in errors
    )


def test_a_name_pinned_to_the_receiver_is_delivered_without_asking_dns(engine, receiver):
    world = build(engine)
    made = webhooks.create_endpoint(
        world.engine,
        world.principals["token"],
        url=f"http://hooks.invalid:{receiver.port}/pinned",  # .invalid never resolves
        topics=["subscription.created"],
        at=world.at(16),
    )
    receiver.secrets["/pinned"] = made["secret"]
    local = Destinations(private=True, resolver=lambda host, port: ["127.0.0.1"])
    with Dispatcher(world.engine, now=receiver.clock, destinations=local) as dispatcher:
        dispatcher.run_once()
    rows = deliveries(world.engine, made["id"])
    assert rows and all(row.status == "delivered" for row in rows)
    assert sum(receiver.accepted("/pinned").values()) == len(rows)


class _TlsReceiver:
    """An HTTPS server on 127.0.0.1 whose certificate (from a test CA) names ``name``;
    answers 200 to every POST and keeps the Host header it was sent."""

    def __init__(self, ca: trustme.CA, name: str) -> None:
        hosts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(name).configure_cert(context)
        self.hosts = hosts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("certified", ["hooks.test", "someone-else.test"])
def test_https_to_the_pinned_address_checks_the_certificate_against_the_endpoint_name(
    engine, certified
):
    ca = trustme.CA()
    server = _TlsReceiver(ca, certified)
    try:
        world = build(engine)
        made = webhooks.create_endpoint(
            world.engine,
            world.principals["token"],
            url=f"https://hooks.test:{server.port}/tls",
            topics=["subscription.created"],
            at=world.at(16),
        )
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        local = Destinations(private=True, resolver=lambda host, port: ["127.0.0.1"])
        with Dispatcher(
            world.engine,
            client=httpx.Client(verify=trusting, follow_redirects=False),
            now=Clock(START),
            destinations=local,
        ) as dispatcher:
            dispatcher.run_once()
        rows = deliveries(world.engine, made["id"])
        with world.engine.connect() as connection:
            errors = connection.execute(select(t.webhook_attempts.c.error)).scalars().all()
    finally:
        server.stop()
    assert rows
    if certified == "hooks.test":  # the name the endpoint gave: verified and delivered
        assert all(row.status == "delivered" for row in rows), errors
        assert server.hosts == [f"hooks.test:{server.port}"] * len(rows)
    else:  # a certificate for another name is refused, though the address is the same
        assert all(row.status == "pending" for row in rows) and server.hosts == []
        assert errors and all("CERTIFICATE_VERIFY_FAILED" in error for error in errors), errors
