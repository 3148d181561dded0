"""API latency and throughput: previews and checkouts over HTTP against the real server.

Prepares a fresh database (one tenant, ``--subscriptions`` subscriptions with one account
each, an API token with every scope), starts ``prorata.web.app:app_from_environment`` under
uvicorn in a second process on 127.0.0.1 (a free port), and drives it from this process
with ``--clients`` threads, each with its own keep-alive httpx client and its own
subscriptions, for ``--seconds`` per phase:

- preview: ``POST /v1/subscriptions/{id}/preview`` with a quantity change (nothing kept);
- checkout: ``POST /v1/checkout`` of one quantity change, seats alternately up and down, a
  fresh ``Idempotency-Key`` per call and the ``expected_version`` of the previous response.

Latency is measured per request in this process, so it includes HTTP, JSON and the
loopback round trip. Non-2xx answers are counted apart; more than ``--max-errors`` percent
of them fails the run (exit status 1). The last line reads
``preview_p50_ms=<n> preview_p99_ms=<n> checkout_p99_ms=<n> rps=<n>`` (rps: successful
requests per second over both phases).

SQLite (the default) runs in a temporary file; ``--database postgresql://…`` runs in a new
schema of that database, dropped at the end.

    .venv/bin/python bench/api.py [--seconds 10] [--clients 4] [--database URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from prorata.adapters.database import database_url, make_engine, migrate
from prorata.adapters.tenants import add_account, create_tenant
from prorata.core.model import Account
from prorata.scenario.loader import parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.credentials import SCOPES, issue_token

CATALOG = """
currency: EUR
timezone: Europe/Paris
policy: stripe
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "29.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "59.00", per_unit: true}
accounts: []
events: []
"""
QUANTITY = 5  # every subscription starts with 5 seats; changes go to 4 or 6
WARMUP = 3  # untimed calls per client and phase (statement caches, connection pools)
ROOT = Path(__file__).resolve().parent.parent
QUIET = re.compile(r"\[info\s*\] request .*status=[1-4]\d\d\b")  # the per-request log


# -- the database -------------------------------------------------------------------------


@dataclass
class Prepared:
    token: str
    versions: dict[str, int]  # subscription id -> version after subscribing


def prepare(url: str, count: int) -> Prepared:
    """Migrate ``url``, then one tenant, ``count`` accounts each with one subscription
    started a few days ago (so the server's real clock quotes inside the first period)."""
    engine = make_engine(url)
    try:
        migrate(engine)
        scenario = parse_scenario(CATALOG)
        now = datetime.now(UTC)
        with engine.begin() as connection:
            tenant = create_tenant(
                connection,
                slug=f"bench-api-{uuid.uuid4().hex[:8]}",
                name="bench api",
                currency="EUR",
                timezone="Europe/Paris",
                catalog=scenario.catalog,
                policy=scenario.policy,
            )
            for n in range(count):
                add_account(connection, tenant, Account(f"a{n}", locale="en"))
            token = issue_token(connection, tenant, name="bench", scopes=list(SCOPES), now=now)
        principal = Principal(tenant, kind="token")
        versions = {}
        for n in range(count):
            created = subscriptions.subscribe(
                engine,
                principal,
                subscription=f"s{n}",
                account=f"a{n}",
                plan="basic-m",
                quantity=QUANTITY,
                at=now - timedelta(days=3),
            )
            versions[f"s{n}"] = created["subscription"]["version"]
        return Prepared(token, versions)
    finally:
        engine.dispose()


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``uvicorn prorata.web.app:app_from_environment --factory`` in a child process."""

    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("wb")
        env = dict(os.environ, PRORATA_DATABASE_URL=url)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "prorata.web.app:app_from_environment",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited with status {self.process.returncode}:\n{self.tail()}"
                    )
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        """The server's last output lines, without the access log of its 1xx-4xx answers."""
        if not self._log.closed:
            self._log.flush()
        written = self.log_path.read_text(errors="replace").splitlines()
        kept = [line for line in written if not QUIET.search(line)]
        return "\n".join(kept[-lines:]) or "(nothing but requests answered below 500)"

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown, lifespan included), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# -- the clients --------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, successful calls only
    errors: Counter = field(default_factory=Counter)  # "409 version_conflict" -> count
    samples: list[str] = field(default_factory=list)  # a few error bodies

    def fail(self, response: httpx.Response | None, what: str) -> None:
        if response is None:
            label = what
        else:
            code = ""
            with contextlib.suppress(ValueError, AttributeError):
                code = response.json().get("code", "")
            label = f"{response.status_code} {code}".strip()
            if len(self.samples) < 5:
                self.samples.append(f"{what}: {response.status_code} {response.text[:300]}")
        self.errors[label] += 1

    def merge(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        self.samples.extend(other.samples[: max(0, 5 - len(self.samples))])


class Client:
    """One thread's keep-alive connection and the subscriptions it alone changes."""

    def __init__(self, base: str, token: str, mine: list[str], versions: dict[str, int]):
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
        self.mine = mine
        self.version = {s: versions[s] for s in mine}
        self.quantity = dict.fromkeys(mine, QUANTITY)
        self.n = 0

    def close(self) -> None:
        self.http.close()

    def _call(self, tally: Tally, what: str, path: str, body: dict, headers=None):
        began = time.perf_counter()
        try:
            response = self.http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            tally.fail(None, f"{type(exc).__name__}")
            return None
        spent = time.perf_counter() - began
        if not response.is_success:
            tally.fail(response, what)
            return None
        tally.latencies.append(spent)
        return response.json()

    def preview(self, tally: Tally) -> None:
        sub = self.mine[self.n % len(self.mine)]
        quantity = QUANTITY + (1 if self.n % 2 == 0 else -1)
        self.n += 1
        path = f"/v1/subscriptions/{sub}/preview"
        answer = self._call(tally, "preview", path, {"quantity": quantity})
        if answer is not None and not answer.get("allowed"):
            tally.latencies.pop()
            tally.errors[f"refused {answer.get('refusal', {}).get('code')}"] += 1
        elif answer is not None:
            self.version[sub] = answer["version"]

    def checkout(self, tally: Tally) -> None:
        sub = self.mine[self.n % len(self.mine)]
        self.n += 1
        quantity = QUANTITY + 1 if self.quantity[sub] <= QUANTITY else QUANTITY - 1
        item = {"subscription": sub, "quantity": quantity, "expected_version": self.version[sub]}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        answer = self._call(tally, "checkout", "/v1/checkout", {"items": [item]}, headers)
        if answer is None:
            self.resync(sub)
            return
        result = answer["items"][0]
        if result["status"] != "applied":
            tally.latencies.pop()
            tally.errors[f"status {result['status']}"] += 1
        self.version[sub] = result["version"]
        self.quantity[sub] = quantity

    def resync(self, sub: str) -> None:
        """After a failed checkout: read the subscription's version and seats again."""
        try:
            response = self.http.get(f"/v1/subscriptions/{sub}")
            if response.is_success:
                found = response.json()
                self.version[sub], self.quantity[sub] = found["version"], found["quantity"]
        except httpx.HTTPError:
            pass


@dataclass
class Phase:
    name: str
    tally: Tally
    seconds: float

    @property
    def ok(self) -> int:
        return len(self.tally.latencies)

    @property
    def failed(self) -> int:
        return sum(self.tally.errors.values())

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the successful calls, in milliseconds."""
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return float("nan")
        rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
        return ordered[rank - 1] * 1000


def run_phase(name: str, clients: list[Client], seconds: float) -> Phase:
    step = {"preview": Client.preview, "checkout": Client.checkout}[name]
    for client in clients:  # warm-up, untimed and uncounted
        for _ in range(WARMUP):
            step(client, Tally())
    tallies = [Tally() for _ in clients]
    start = threading.Barrier(len(clients) + 1)
    deadline = [0.0]
    crashed: list[BaseException] = []

    def work(client: Client, tally: Tally) -> None:
        try:
            start.wait()
            while time.perf_counter() < deadline[0]:
                step(client, tally)
        except BaseException as exc:  # reported by the main thread
            crashed.append(exc)

    threads = [
        threading.Thread(target=work, args=(c, t), name=f"{name}-{i}", daemon=True)
        for i, (c, t) in enumerate(zip(clients, tallies, strict=True))
    ]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    spent = time.perf_counter() - began
    if crashed:
        raise RuntimeError(f"a {name} client crashed") from crashed[0]
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return Phase(name, total, spent)


def report(phase: Phase) -> None:
    errors = ", ".join(f"{label}: {n}" for label, n in phase.tally.errors.most_common())
    print(
        f"{phase.name:8s} ok={phase.ok} errors={phase.failed} seconds={phase.seconds:.1f} "
        f"rps={phase.ok / phase.seconds:.1f} p50_ms={phase.percentile(50):.1f} "
        f"p90_ms={phase.percentile(90):.1f} p99_ms={phase.percentile(99):.1f} "
        f"max_ms={phase.percentile(100):.1f}" + (f" ({errors})" if errors else ""),
        flush=True,
    )


# -- the run ------------------------------------------------------------------------------


def bench(url: str, kind: str, folder: Path, args) -> int:
    print(f"database={kind} clients={args.clients} subscriptions={args.subscriptions}", flush=True)
    began = time.perf_counter()
    prepared = prepare(url, args.subscriptions)
    print(f"prepared in {time.perf_counter() - began:.1f} s", flush=True)
    server = Server(url, folder / "server.log")
    clients: list[Client] = []
    try:
        server.wait_healthy()
        print(f"server pid={server.process.pid} {server.base}", flush=True)
        subs = sorted(prepared.versions, key=lambda s: int(s[1:]))
        for index in range(args.clients):
            mine = subs[index :: args.clients]  # no two clients share a subscription
            clients.append(Client(server.base, prepared.token, mine, prepared.versions))
        phases = [run_phase(name, clients, args.seconds) for name in ("preview", "checkout")]
    finally:
        for client in clients:
            client.close()
        server.stop()
    for phase in phases:
        report(phase)
    preview, checkout = phases
    ok = sum(p.ok for p in phases)
    failed = sum(p.failed for p in phases)
    rate = 100 * failed / max(1, ok + failed)
    status = 0
    if rate > args.max_errors or ok == 0:
        status = 1
        print(
            f"FAILED: {failed} of {ok + failed} requests were errors ({rate:.1f} %, "
            f"limit {args.max_errors} %)",
            file=sys.stderr,
        )
        for phase in phases:
            for sample in phase.tally.samples:
                print(f"  {sample}", file=sys.stderr)
        print(f"server log (last lines):\n{server.tail()}", file=sys.stderr, flush=True)
    elif failed:
        print(f"errors={failed} ({rate:.2f} %, under the {args.max_errors} % limit)")
    print(
        f"preview_p50_ms={preview.percentile(50):.1f} preview_p99_ms={preview.percentile(99):.1f} "
        f"checkout_p99_ms={checkout.percentile(99):.1f} "
        f"rps={ok / sum(p.seconds for p in phases):.1f}",
        flush=True,
    )
    return status


def on_postgres(args, folder: Path) -> int:
    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url(args.database), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(database_url(args.database))
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        return bench(url.render_as_string(hide_password=False), "postgresql", folder, args)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time per phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--subscriptions", type=int, default=200, help="shared by the clients")
    parser.add_argument(
        "--database", help="a PostgreSQL URL (default: SQLite in a temporary directory)"
    )
    parser.add_argument(
        "--max-errors", type=float, default=2.0, help="percent of non-2xx answers that fails"
    )
    args = parser.parse_args()
    if args.clients < 1 or args.subscriptions < args.clients:
        parser.error("need --clients >= 1 and --subscriptions >= --clients")
    if args.database and make_url(args.database).get_backend_name() != "postgresql":
        parser.error("--database takes a PostgreSQL URL; SQLite runs in a temporary file")

    def terminated(signum, _frame):  # SIGTERM: unwind like Ctrl-C, so the server stops
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    try:
        with tempfile.TemporaryDirectory(prefix="prorata-bench-api-") as name:
            folder = Path(name)
            if args.database:
                status = on_postgres(args, folder)
            else:
                status = bench(f"sqlite:///{folder / 'bench.db'}", "sqlite", folder, args)
    except KeyboardInterrupt:
        print("interrupted (server stopped, temporary database removed)", file=sys.stderr)
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
