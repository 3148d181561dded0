"""Quote throughput: how many change quotes the pure core computes per second.

A mixed set: upgrades, downgrades, seat changes and billing-cycle switches on monthly and
annual subscriptions, under several presets (day and second proration, difference and
separate lines, billed-amount credits). Prints one line per preset, then
``quotes_per_s=<number>`` over the whole mix.

    .venv/bin/python bench/quote.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from prorata.core.changes import Quote, evaluate
from prorata.core.model import Change
from prorata.scenario.loader import parse_scenario
from prorata.scenario.simulator import Simulation

CATALOG = """
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "29.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "59.00", per_unit: true}
        - {id: basic-y, tier: 1, period: annual, price: "290.00", per_unit: true}
        - {id: pro-y, tier: 2, period: annual, price: "590.00", per_unit: true}
accounts:
  - {id: acme, locale: fr}
events:
  - {at: 2024-01-01, subscribe: {id: m, account: acme, plan: basic-m, quantity: 5}}
  - {at: 2024-01-01, subscribe: {id: y, account: acme, plan: pro-y, quantity: 5}}
run_until: 2024-03-01
"""

CHANGES = [
    Change("m", plan="pro-m"),
    Change("m", quantity=8),
    Change("m", quantity=3),
    Change("m", period="annual"),
    Change("y", plan="basic-y"),
    Change("y", quantity=9),
    Change("y", period="monthly"),
]

PRESETS = ["chetspms", "stripe", "killbill", "chargebee", "whmcs", "aircall"]


def prepare(preset: str):
    sim = Simulation(parse_scenario(f"currency: EUR\npolicy: {preset}\n{CATALOG}"))
    sim.run()
    return sim


def measure(sim, seconds: float) -> tuple[int, float]:
    subs = sim.book.subscriptions
    at = sim.scenario.run_until + timedelta(days=12, hours=5)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for change in CHANGES:
            evaluate(sim.billing.ctx, subs[change.subscription], change, at)
            count += 1
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per preset")
    args = parser.parse_args()
    total, elapsed = 0, 0.0
    for preset in PRESETS:
        sim = prepare(preset)
        subs = sim.book.subscriptions
        sample = evaluate(sim.billing.ctx, subs["m"], CHANGES[0], sim.scenario.run_until)
        assert isinstance(sample, Quote), sample
        count, spent = measure(sim, args.seconds)
        total, elapsed = total + count, elapsed + spent
        print(f"{preset:10s} quotes={count:7d} quotes_per_s={count / spent:,.0f}")
    print(f"quotes_per_s={total / elapsed:.0f}")


if __name__ == "__main__":
    main()
