"""The ``prorata simulate`` command: JSON on stdout, exit 2 naming key and line on bad files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prorata.entrypoints.cli import app
from tests.conftest import SHARED_SCENARIOS, shared_scenarios_present

runner = CliRunner()

VALID = """\
currency: EUR
policy: aircall
catalog:
  products:
    - id: phone
      plans:
        - {id: essentials, tier: 1, period: monthly, price: "30.00", per_unit: true}
accounts:
  - {id: acme, locale: fr}
events:
  - at: 2024-06-06
    subscribe: {id: s1, account: acme, plan: essentials, quantity: 10, billing_day: 6,
                term: {period: annual, auto_renew: true}}
  - at: 2024-07-10
    change: {subscription: s1, quantity: 6}
run_until: 2024-07-31
"""


def write(tmp_path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_json_output_follows_the_spec(tmp_path):
    result = runner.invoke(app, ["simulate", str(write(tmp_path, VALID)), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # the spec's keys, and the one extension (README: payments)
    spec = {"documents", "accounts", "subscriptions", "requests", "rejected"}
    assert set(out) == spec | {"payments"}
    assert all(p["kind"] == "charge" and p["status"] == "succeeded" for p in out["payments"])
    note = out["documents"][-1]
    assert note["type"] == "credit_note" and note["refers_to"] == "INV-0002"
    assert note["lines"][0]["quantity"] == 4
    assert note["lines"][0]["fraction"] == "0.8710"
    assert note["total"] == "104.52"
    assert out["accounts"] == {"acme": {"credit": "104.52"}}
    assert out["subscriptions"]["s1"]["period_end"] == "2024-08-06"


def test_table_and_explanations(tmp_path):
    result = runner.invoke(app, ["simulate", str(write(tmp_path, VALID)), "--explain"])
    assert result.exit_code == 0, result.output
    assert "CN-0001" in result.stdout and "104.52" in result.stdout
    assert "27/31 jours" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("quantity: 6}", "quantity: -6}", ":15: events[1].change.quantity"),
        ("policy: aircall", "policy: airkall", ":2: policy"),
        ("at: 2024-07-10", "at: 2024-07-40", ":14: events[1].at"),
        ("plan: essentials, quantity", "plan: premium, quantity", ":12: events[0].subscribe.plan"),
        ("run_until:", "run_until_date:", ":16: run_until_date"),
        ("products:", "products: [", ""),
    ],
)
def test_invalid_files_exit_2_naming_key_and_line(tmp_path, old, new, where):
    assert old in VALID
    result = runner.invoke(
        app, ["simulate", str(write(tmp_path, VALID.replace(old, new))), "--json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "scenario.yaml" in result.stderr and where in result.stderr


def test_every_shared_scenario_runs_from_the_command_line():
    if not shared_scenarios_present():
        pytest.skip("no shared scenarios")
    for path in sorted(SHARED_SCENARIOS.rglob("*.yaml")):
        result = runner.invoke(app, ["simulate", str(path), "--json"])
        assert result.exit_code == 0, (path, result.output)
        assert json.loads(result.stdout)["documents"]


ADJUSTED = """\
currency: USD
policy: chargebee
catalog:
  products:
    - id: app
      plans:
        - {id: silver, tier: 1, period: monthly, price: "15.00"}
        - {id: gold, tier: 2, period: monthly, price: "30.00"}
accounts:
  - {id: cus, locale: en, auto_pay: false}
events:
  - at: 2024-04-01
    subscribe: {id: s1, account: cus, plan: gold, billing_day: 1}
  - at: 2024-04-05
    change: {subscription: s1, plan: silver}
  - at: 2024-04-06
    pay: {invoice: INV-0002}
run_until: 2024-04-20
"""


def _table_rows(stdout: str, number: str) -> dict[str, str]:
    """The label and amount of each row of invoice ``number``'s table."""
    table = stdout.split(f"Invoice {number} ")[1].split("└")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0]:
            rows[cells[0]] = cells[3]
    return rows


def test_the_table_says_what_an_adjusted_invoice_still_asks_for(tmp_path):
    """An invoice's table keeps its issued figures and, while it is open or once credit
    notes were allocated to it, says what they and its payments took off it and what it
    still asked for at the end of the run."""
    result = runner.invoke(app, ["simulate", str(write(tmp_path, ADJUSTED))], terminal_width=200)
    assert result.exit_code == 0, result.output
    first = _table_rows(result.stdout, "INV-0001")
    assert first["amount due"] == "30.00 (open)"  # as issued
    assert first["less credit notes CN-0001"] == "-26.00"
    assert first["still due at the end"] == "4.00"
    assert "less payments" not in first
    second = _table_rows(result.stdout, "INV-0002")  # paid, no note: its amount due says it
    assert second["amount due"] == "13.00 (paid)" and "still due at the end" not in second

    paid = ADJUSTED.replace("    pay: {invoice: INV-0002}", "    pay: {invoice: INV-0001}")
    result = runner.invoke(app, ["simulate", str(write(tmp_path, paid))], terminal_width=200)
    first = _table_rows(result.stdout, "INV-0001")
    assert first["amount due"] == "30.00 (paid)"
    assert (first["less credit notes CN-0001"], first["less payments"]) == ("-26.00", "-4.00")
    assert first["still due at the end"] == "0.00"
    second = _table_rows(result.stdout, "INV-0002")  # open, nothing taken off yet
    assert second["amount due"] == "13.00 (open)" and second["still due at the end"] == "13.00"
