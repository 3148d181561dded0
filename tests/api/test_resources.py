"""Resources of the HTTP API, on SQLite and PostgreSQL: catalog, subscriptions and their
options, cancellation, seats, requests, documents, credit, accounts, members and sessions.

The world is tests/store/world.py's (gotoassist policy; s1 standard-monthly × 2 billed on the
15th since 2024-01-15 09:00 New York; the clock stands at 2024-02-20 10:00 New York). Some
tests add a second tenant, ``contract_tenant``: an Aircall-like contract policy (30 days'
notice, credit notes for removed users) where changing the billing cycle is forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4
from zoneinfo import ZoneInfo

from prorata.adapters.tenants import add_account, create_tenant
from prorata.scenario.loader import parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.credentials import SCOPES, issue_token
from prorata.services.transaction import run

PROBLEM = "application/problem+json"
CONTRACT = """\
currency: EUR
timezone: Europe/Paris
policy: {preset: aircall, period_change: {timing: forbidden}}
catalog:
  products:
    - id: phone
      plans:
        - {id: essentials, tier: 1, period: monthly, price: "30.00", per_unit: true}
        - {id: professional, tier: 2, period: monthly, price: "50.00", per_unit: true}
        - {id: essentials-annual, tier: 1, period: annual, price: "300.00", per_unit: true}
accounts:
  - {id: agence, locale: fr}
events: []
"""


@dataclass
class Contract:
    tenant: int
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


def contract_tenant(api) -> Contract:
    """A tenant under a contract policy, account ``agence`` with m1 (essentials × 10,
    monthly) and a1 (essentials-annual × 10), both since 2024-01-15 and billed on the 15th;
    and an API token with every scope."""
    scenario = parse_scenario(CONTRACT)
    engine = api.world.engine
    with engine.begin() as connection:
        tenant = create_tenant(
            connection,
            slug=f"contract-{uuid4().hex[:12]}",
            name="contract",
            currency=scenario.currency,
            timezone=scenario.timezone.key,
            catalog=scenario.catalog,
            policy=scenario.policy,
        )
        for account in scenario.accounts.values():
            add_account(connection, tenant, account)
        token = issue_token(connection, tenant, name="contract", scopes=list(SCOPES), now=api.now)
    start = datetime(2024, 1, 15, 9, tzinfo=ZoneInfo("Europe/Paris"))
    for key, plan in (("m1", "essentials"), ("a1", "essentials-annual")):
        subscriptions.subscribe(
            engine,
            Principal(tenant, kind="token"),
            subscription=key,
            account="agence",
            plan=plan,
            quantity=10,
            billing_day=15,
            at=start,
        )
    return Contract(tenant, token)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


# catalog and subscriptions ----------------------------------------------------------------


def test_the_catalog_and_a_subscriptions_product_page(api):
    catalog = ok(api.client.get("/v1/catalog", headers=api.headers("read_token")))
    assert catalog["currency"] == "USD"
    assert catalog["products"] == [
        {
            "id": "remote-support",
            "name": "GoToAssist Remote Support v5",
            "platform": None,
            "includes": [],
        }
    ]
    assert [
        (p["id"], p["tier"], p["period"], p["price"], p["per_unit"]) for p in catalog["plans"]
    ] == [
        ("standard-monthly", 1, "monthly", "45.00", True),
        ("premium-monthly", 2, "monthly", "65.00", True),
        ("standard-annual", 1, "annual", "468.00", True),
        ("premium-annual", 2, "annual", "708.00", True),
    ]
    for plan in catalog["plans"]:
        assert plan["product"] == "remote-support" and plan["currency"] == "USD"
        assert plan["product_name"] == "GoToAssist Remote Support v5"
        assert plan["fulfillment"] == "auto" and plan["maintenance"] is None
        assert plan["pay_in_advance"] is True
    assert ok(api.client.get("/v1/catalog", headers=api.headers("member"))) == catalog

    expected = {
        "id": "s1",
        "account": "corp",
        "status": "active",
        "plan": "standard-monthly",
        "quantity": 2,
        "items": [{"plan": "standard-monthly", "quantity": 2}],
        "period": "monthly",
        "currency": "USD",
        "signed_up_at": "2024-01-15T09:00:00-05:00",
        "started_at": "2024-01-15T09:00:00-05:00",
        "recurring_amount": "90.00",  # 45.00 × 2
        "payment_method": None,
        "cancel_at": None,
        "scheduled": [],
        "term_end": None,
        "term": None,
        "maintenance_until": None,
        "seats_assigned": 0,
        "pending_lines": [],
        "in_arrears_since": None,
    }
    api.now = api.world.at(10)  # before the renewal of 15 February
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("member")))
    assert detail == expected | {
        "version": 1,
        "period_start": "2024-01-15T00:00:00-05:00",
        "period_end": "2024-02-15T00:00:00-05:00",
        "next_due_at": "2024-02-15T00:00:00-05:00",
    }
    api.now = api.world.at(20)  # the renewal that fell due is shown caught up
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))
    assert detail == expected | {
        "version": 2,
        "period_start": "2024-02-15T00:00:00-05:00",
        "period_end": "2024-03-15T00:00:00-04:00",  # daylight saving time begins on 10 March
        "next_due_at": "2024-03-15T00:00:00-04:00",
    }
    problem(
        api.client.get("/v1/subscriptions/nope", headers=api.headers("owner")), 404, "not_found"
    )


def test_subscribing_through_the_api_bills_a_first_prorated_period_with_tax(api):
    token = api.headers("token")
    account = ok(
        api.client.post(
            "/v1/accounts",
            json={"id": "taxco", "tax_rate": "20", "auto_pay": False, "payment_method": "card"},
            headers=token,
        ),
        201,
    )
    assert (account["tax_rate"], account["auto_pay"], account["payment_method"]) == (
        "20",
        False,
        "card",
    )
    created = ok(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "taxco", "plan": "standard-monthly", "quantity": 3, "billing_day": 15},
            headers=token,
        ),
        201,
    )
    key = created["subscription"]["id"]
    assert key.startswith("sub_") and created["subscription"]["version"] == 1
    (invoice,) = created["documents"]
    # 45.00 × 3 × 24/29 = 111.72 to the first billing day, then 20 % tax
    assert [line["amount"] for line in invoice["lines"]] == ["111.72"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("111.72", "22.34", "134.06")
    assert (invoice["amount_due"], invoice["status"]) == ("134.06", "open")
    detail = ok(api.client.get(f"/v1/subscriptions/{key}", headers=token))
    assert detail["signed_up_at"] == "2024-02-20T10:00:00-05:00"
    assert detail["recurring_amount"] == "135.00"
    assert detail["payment_method"] == "card"
    assert detail["period_end"] == detail["next_due_at"] == "2024-03-15T00:00:00-04:00"

    listed = ok(api.client.get("/v1/invoices?account=taxco&status=open", headers=token))
    assert [d["number"] for d in listed["items"]] == [invoice["number"]]
    assert ok(api.client.get("/v1/payments?account=taxco", headers=token))["items"] == []
    missing = problem(
        api.client.get("/v1/payments/999999/receipt", headers=token), 404, "not_found"
    )
    assert missing["detail"] == "Payment 999999 does not exist."

    # The customer pays on 1 March (there is no payment route: the bill run records it).
    api.now = api.world.at(1, month=3)
    system = Principal(api.world.tenant, kind="system")
    run(
        api.world.engine,
        system,
        "pay",
        {"invoice": invoice["number"]},
        lambda work: work.billing.pay(invoice["number"], work.at).status,
        at=api.now,
    )
    (payment,) = ok(api.client.get("/v1/payments?account=taxco", headers=token))["items"]
    assert payment | {"id": 0} == {
        "id": 0,
        "kind": "charge",
        "status": "succeeded",
        "receipt": f"RCT-{payment['id']:06d}",
        "invoice": invoice["number"],
        "credit_note": None,
        "account": "taxco",
        "amount": "134.06",
        "currency": "USD",
        "method": "card",
        "paid_at": "2024-03-01T10:00:00-05:00",
    }
    receipt = ok(api.client.get(f"/v1/payments/{payment['id']}/receipt", headers=token))
    assert {k: v for k, v in receipt.items() if k != "document"} == payment
    assert receipt["document"]["number"] == invoice["number"]
    assert receipt["document"]["status"] == "paid" and receipt["document"]["total"] == "134.06"
    stored = ok(api.client.get(f"/v1/invoices/{invoice['number']}", headers=token))
    assert stored["status"] == "paid" and stored["payments"] == [payment]
    assert (
        ok(api.client.get("/v1/invoices?account=taxco&status=open", headers=token))["items"] == []
    )


def test_subscriptions_are_listed_by_account_and_status(api):
    token = api.headers("token")
    for key, account in (("s2", "corp"), ("o1", "other")):
        subscriptions.subscribe(
            api.world.engine,
            api.world.principals["token"],
            subscription=key,
            account=account,
            plan="standard-monthly",
            billing_day=15,
            at=api.world.at(16, month=1),
        )
    cancelled = ok(
        api.client.post(
            "/v1/subscriptions/s2/cancel",
            json={"timing": "immediate"},
            headers=api.headers("owner"),
        )
    )
    assert cancelled["status"] == "applied"
    assert cancelled["effective_at"] == "2024-02-20T10:00:00-05:00"

    def keys(path: str, who: str = "owner") -> list[tuple[str, str]]:
        items = ok(api.client.get(path, headers=api.headers(who)))["items"]
        return [(s["id"], s["status"]) for s in items]

    assert keys("/v1/subscriptions") == [("s1", "active"), ("s2", "cancelled")]
    assert keys("/v1/subscriptions?account=corp") == [("s1", "active"), ("s2", "cancelled")]
    assert keys("/v1/subscriptions?status=active") == [("s1", "active")]
    assert keys("/v1/subscriptions?account=corp&status=cancelled") == [("s2", "cancelled")]
    assert keys("/v1/subscriptions", "stranger") == [("o1", "active")]
    assert keys("/v1/subscriptions?account=other", "token") == [("o1", "active")]
    assert keys("/v1/subscriptions?status=active", "token") == [("s1", "active"), ("o1", "active")]
    page = ok(api.client.get("/v1/subscriptions?limit=1&offset=1", headers=token))
    assert (page["limit"], page["offset"], len(page["items"])) == (1, 1, 1)
    problem(
        api.client.get("/v1/subscriptions?account=other", headers=api.headers("owner")),
        404,
        "not_found",
    )
    cancelled_detail = ok(api.client.get("/v1/subscriptions/s2", headers=token))
    assert cancelled_detail["next_due_at"] is None
    assert cancelled_detail["cancel_at"] == "2024-02-20T10:00:00-05:00"


def test_the_status_filter_agrees_with_the_status_shown(api):
    # Regression: ?status= used to filter on the stored status while the items are shown
    # caught up, so a cancellation that had taken effect was listed under active.
    ok(api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=api.headers("owner")))
    api.now = api.world.at(16, month=3)  # the end of the term has passed
    shown = ok(api.client.get("/v1/subscriptions", headers=api.headers("owner")))["items"]
    assert [(s["id"], s["status"]) for s in shown] == [("s1", "cancelled")]
    active = ok(api.client.get("/v1/subscriptions?status=active", headers=api.headers("owner")))
    assert [s["status"] for s in active["items"]] == []
    ended = ok(api.client.get("/v1/subscriptions?status=cancelled", headers=api.headers("owner")))
    assert [s["id"] for s in ended["items"]] == ["s1"]


def test_upgrade_options_carry_quotes_or_refusals(api):
    options = ok(api.client.get("/v1/subscriptions/s1/options", headers=api.headers("owner")))
    assert options["subscription"] == "s1" and options["version"] == 2
    assert options["current"]["id"] == "standard-monthly"
    assert [
        (o["plan"]["id"], o["allowed"], o["quote"]["kind"], o["quote"]["total"])
        for o in options["options"]
    ] == [
        ("standard-annual", True, "period_change", "861.52"),  # 936.00 - 74.48
        ("premium-annual", True, "period_change", "1341.52"),  # 1416.00 - 74.48
        ("premium-monthly", True, "upgrade", "33.11"),  # 107.59 - 74.48
    ]
    premium = options["options"][2]["quote"]
    preview = ok(
        api.client.post(
            "/v1/subscriptions/s1/preview",
            json={"plan": "premium-monthly"},
            headers=api.headers("owner"),
        )
    )
    assert preview["quote"] == premium  # an allowed option is what a checkout would bill

    contract = contract_tenant(api)
    for language, message in (
        (
            "en",
            "This policy does not allow a change of billing cycle online; "
            "please contact customer support.",
        ),
        (
            "fr",
            "Cette politique ne permet pas ce changement en ligne (changement de fréquence de "
            "facturation) ; veuillez contacter l'assistance clientèle.",
        ),
    ):
        mixed = ok(
            api.client.get(
                "/v1/subscriptions/m1/options",
                headers=contract.headers(**{"Accept-Language": language}),
            )
        )
        refused, allowed = mixed["options"]
        assert refused["plan"]["id"] == "essentials-annual" and refused["allowed"] is False
        assert refused["refusal"] == {"code": "change_forbidden", "message": message}
        assert "quote" not in refused
        assert allowed["plan"]["id"] == "professional" and allowed["allowed"] is True
        # (50.00 - 30.00) × 10 × 24/29, one difference line under this policy
        assert [line["amount"] for line in allowed["quote"]["lines"]] == ["165.52"]
        assert allowed["quote"]["total"] == "165.52"


def test_cancel_at_the_end_of_the_term_then_undo(api):
    owner = api.headers("owner", **{"Idempotency-Key": "bye"})
    cancel = ok(api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=owner))
    assert cancel["status"] == "scheduled" and cancel["version"] == 3
    assert cancel["effective_at"] == "2024-03-15T00:00:00-04:00"
    assert cancel["quote"]["timing"] == "end_of_term" and cancel["documents"] == []
    replay = api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=owner)
    assert replay.status_code == 200 and replay.json() == cancel
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("member")))
    assert detail["status"] == "active"  # access until the end of the paid period
    assert detail["cancel_at"] == "2024-03-15T00:00:00-04:00" and detail["version"] == 3

    undo = ok(api.client.post("/v1/subscriptions/s1/undo", headers=api.headers("billing_contact")))
    assert undo["status"] == "applied" and undo["version"] == 4 and undo["documents"] == []
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))
    assert detail["cancel_at"] is None and detail["status"] == "active"
    assert detail["version"] == 4
    nothing = problem(
        api.client.post("/v1/subscriptions/s1/undo", headers=api.headers("owner")),
        422,
        "nothing_scheduled",
    )
    assert nothing["detail"] == "Nothing is scheduled for this subscription."

    # Not undone, the cancellation takes effect at the end of the term.
    ok(api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=api.headers("owner")))
    api.now = api.world.at(15, month=3, hour=1)
    ended = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))
    assert ended["status"] == "cancelled" and ended["next_due_at"] is None


# seats ------------------------------------------------------------------------------------


def test_seats_are_assigned_listed_released_and_protect_reductions(api):
    users = api.world.users
    owner = api.headers("owner")
    path = "/v1/subscriptions/s1/seats"
    seats = ok(api.client.post(path, json={"user": users["owner"]}, headers=owner), 201)
    assert seats["seats"] == 2 and [h["user"] for h in seats["assigned"]] == [users["owner"]]
    seats = ok(
        api.client.post(
            path, json={"user": users["member"]}, headers=api.headers("billing_contact")
        ),
        201,
    )
    assert [h["user"] for h in seats["assigned"]] == [users["owner"], users["member"]]
    assert ok(api.client.get(path, headers=api.headers("member"))) == seats

    full = problem(
        api.client.post(path, json={"user": users["billing_contact"]}, headers=owner),
        422,
        "no_seat_available",
    )
    assert full["params"] == {"quantity": 2}
    assert full["detail"] == "All 2 seats are assigned; add seats before assigning another user."
    problem(
        api.client.post(path, json={"user": users["owner"]}, headers=owner),
        422,
        "seat_already_assigned",
    )
    problem(
        api.client.post(path, json={"user": users["stranger"]}, headers=owner), 404, "not_found"
    )

    assigned = problem(
        api.client.post(
            "/v1/checkout", json={"items": [{"subscription": "s1", "quantity": 1}]}, headers=owner
        ),
        422,
        "seats_assigned",
    )
    assert assigned["params"] == {"assigned": 2, "excess": 1, "quantity": 1}
    assert assigned["detail"] == (
        "2 seats are assigned to users; release 1 of them before reducing to 1."
    )
    assert ok(api.client.get("/v1/subscriptions/s1", headers=owner))["seats_assigned"] == 2

    # Removing the member from the account releases their seat.
    account = ok(api.client.delete(f"/v1/accounts/corp/members/{users['member']}", headers=owner))
    assert users["member"] not in [m["user"] for m in account["members"]]
    seats = ok(api.client.get(path, headers=owner))
    assert [h["user"] for h in seats["assigned"]] == [users["owner"]]
    reduced = ok(
        api.client.post(
            "/v1/checkout", json={"items": [{"subscription": "s1", "quantity": 1}]}, headers=owner
        )
    )
    assert reduced["items"][0]["documents"][0]["total"] == "-37.24"  # to account credit

    released = ok(api.client.delete(f"{path}/{users['owner']}", headers=owner))
    assert released == {"subscription": "s1", "seats": 1, "assigned": []}
    gone = problem(api.client.delete(f"{path}/{users['owner']}", headers=owner), 404, "not_found")
    assert gone["detail"] == f"User {users['owner']} holds no seat of subscription s1."


def test_seat_instants_are_in_the_tenants_zone(api):
    # Regression: a seat's "since" used to be written in UTC (+00:00).
    seats = ok(
        api.client.post(
            "/v1/subscriptions/s1/seats",
            json={"user": api.world.users["owner"]},
            headers=api.headers("owner"),
        ),
        201,
    )
    assert seats["assigned"][0]["since"] == "2024-02-20T10:00:00-05:00"


# requests ---------------------------------------------------------------------------------


def test_a_tier_cut_is_a_request_that_support_approves(api):
    owner = api.headers("owner")
    up = ok(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "plan": "premium-monthly"}]},
            headers=owner,
        )
    )
    assert up["items"][0]["documents"][0]["total"] == "33.11"
    api.now = api.world.at(22)
    down = ok(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "plan": "standard-monthly"}]},
            headers=owner,
        )
    )
    assert down["status"] == "requested"
    (item,) = down["items"]
    assert item["status"] == "requested" and item["documents"] == [] and item["version"] == 3
    assert item["quote"]["timing"] == "approval"
    request = item["request"]
    number = request["number"]
    assert request == {
        "number": number,
        "subscription": "s1",
        "reason": "approval_required",
        "state": "pending",
        "created_at": "2024-02-22T10:00:00-05:00",
        "decided_at": None,
    }
    assert ok(api.client.get("/v1/subscriptions/s1", headers=owner))["plan"] == "premium-monthly"
    assert ok(api.client.get("/v1/requests", headers=owner))["items"] == [request]
    assert ok(api.client.get("/v1/requests?state=pending", headers=owner))["items"] == [request]
    options = ok(api.client.get("/v1/subscriptions/s1/options", headers=owner))["options"]
    assert {o["refusal"]["code"] for o in options} == {"already_pending"}
    assert options[0]["refusal"]["message"] == (
        f"A request for this subscription is already waiting (request {number})."
    )
    problem(api.client.post(f"/v1/requests/{number}/approve", headers=owner), 403, "forbidden")

    api.now = api.world.at(23)
    decided = ok(api.client.post(f"/v1/requests/{number}/approve", headers=api.headers("support")))
    approved = request | {"state": "approved", "decided_at": "2024-02-23T10:00:00-05:00"}
    assert decided["request"] == approved
    result = decided["result"]
    assert result["status"] == "applied" and result["version"] == 4
    (invoice,) = result["documents"]
    # 45.00 × 2 × 21/29 - 65.00 × 2 × 21/29, to the account's credit
    assert [line["amount"] for line in invoice["lines"]] == ["-94.14", "65.17"]
    assert (invoice["total"], invoice["credit_added"]) == ("-28.97", "28.97")

    assert ok(api.client.get("/v1/requests", headers=owner))["items"] == [approved]
    assert ok(api.client.get("/v1/requests?state=pending", headers=owner))["items"] == []
    assert ok(api.client.get(f"/v1/requests/{number}", headers=owner)) == approved
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=owner))
    assert (detail["plan"], detail["version"], detail["recurring_amount"]) == (
        "standard-monthly",
        4,
        "90.00",
    )
    credit = ok(api.client.get("/v1/accounts/corp/credit", headers=owner))
    assert credit["balances"] == {"USD": "28.97"}
    problem(api.client.get("/v1/requests/999999", headers=owner), 404, "not_found")


# documents and credit ---------------------------------------------------------------------


def test_invoices_and_the_credit_balance_is_the_sum_of_its_entries(api):
    owner = api.headers("owner")

    def check_credit(expected: str) -> list[dict]:
        credit = ok(api.client.get("/v1/accounts/corp/credit", headers=owner))
        assert credit["account"] == "corp" and credit["balances"] == {"USD": expected}
        assert sum(cents(e["amount"]) for e in credit["entries"]) == cents(expected)
        return credit["entries"]

    assert check_credit("0.00") == []
    # A seat cut: 45.00 × 1 × 24/29 - 74.48 = -37.24, kept as credit; then an upgrade uses it.
    for change in ({"quantity": 1}, {"plan": "premium-monthly", "quantity": 3}):
        ok(
            api.client.post(
                "/v1/checkout", json={"items": [{"subscription": "s1", **change}]}, headers=owner
            )
        )
        if "quantity" in change and len(change) == 1:
            check_credit("37.24")
    entries = check_credit("0.00")
    assert [(e["amount"], e["document"], e["reason"]) for e in entries] == [
        ("37.24", "INV-0003", "credit_added"),
        ("-37.24", "INV-0004", "credit_applied"),
    ]
    assert {e["at"] for e in entries} == {"2024-02-20T10:00:00-05:00"}

    invoices = ok(api.client.get("/v1/invoices?account=corp", headers=owner))["items"]
    assert [
        (d["number"], d["issued_at"], d["total"], d["credit_applied"], d["amount_due"])
        for d in invoices
    ] == [
        ("INV-0001", "2024-01-15T09:00:00-05:00", "90.00", "0.00", "90.00"),
        ("INV-0002", "2024-02-15T00:00:00-05:00", "90.00", "0.00", "90.00"),  # the renewal
        ("INV-0003", "2024-02-20T10:00:00-05:00", "-37.24", "0.00", "0.00"),
        ("INV-0004", "2024-02-20T10:00:00-05:00", "124.14", "37.24", "86.90"),
    ]
    assert {d["type"] for d in invoices} == {"invoice"}
    page = ok(api.client.get("/v1/invoices?limit=2&offset=2", headers=owner))["items"]
    assert [d["number"] for d in page] == ["INV-0003", "INV-0004"]
    detail = ok(api.client.get("/v1/invoices/INV-0004", headers=owner))
    assert {k: v for k, v in detail.items() if k != "payments"} == invoices[3]
    assert [line["amount"] for line in detail["lines"]] == ["-37.24", "161.38"]
    # paid automatically on issue: the payment is recorded, with its receipt
    assert [(p["invoice"], p["amount"]) for p in detail["payments"]] == [("INV-0004", "86.90")]
    assert ok(api.client.get("/v1/credit-notes", headers=owner))["items"] == []
    problem(api.client.get("/v1/invoices/INV-9999", headers=owner), 404, "not_found")
    problem(api.client.get("/v1/credit-notes/INV-0001", headers=owner), 404, "not_found")
    problem(api.client.get("/v1/invoices?account=other", headers=owner), 404, "not_found")


def test_credit_notes_under_a_contract_policy(api):
    contract = contract_tenant(api)
    headers = contract.headers()
    result = ok(
        api.client.post(
            "/v1/checkout", json={"items": [{"subscription": "a1", "quantity": 6}]}, headers=headers
        )
    )
    (note,) = result["items"][0]["documents"]
    assert note["type"] == "credit_note" and note["number"] == "CN-0001"
    listed = ok(api.client.get("/v1/credit-notes", headers=headers))["items"]
    assert listed == [note]
    # 300.00 × 4 × 330/366: 4 users removed for the rest of the (leap) year
    assert note["total"] == "1081.97" and note["currency"] == "EUR"
    assert note["refers_to"] == "INV-0002"  # a1's first invoice
    assert note["credited_to"] == "account"
    assert note["issued_at"] == "2024-02-20T16:00:00+01:00"  # the tenant's zone
    line = note["lines"][0]
    assert (line["quantity"], line["start"], line["end"]) == (
        4,
        "2024-02-20T00:00:00+01:00",
        "2025-01-15T00:00:00+01:00",
    )
    assert "330/366" in line["explanation"]
    detail = ok(api.client.get("/v1/credit-notes/CN-0001", headers=headers))
    assert {k: v for k, v in detail.items() if k != "payments"} == note
    problem(api.client.get("/v1/invoices/CN-0001", headers=headers), 404, "not_found")
    credit = ok(api.client.get("/v1/accounts/agence/credit", headers=headers))
    assert credit["balances"] == {"EUR": "1081.97"}
    assert [(e["amount"], e["document"]) for e in credit["entries"]] == [("1081.97", "CN-0001")]
    # The first tenant's documents are not this tenant's.
    problem(
        api.client.get("/v1/credit-notes/CN-0001", headers=api.headers("token")), 404, "not_found"
    )


# accounts, members, sessions --------------------------------------------------------------


def test_owners_manage_members_and_an_account_keeps_an_owner(api):
    users = api.world.users
    owner = api.headers("owner")
    account = ok(
        api.client.put(
            f"/v1/accounts/corp/members/{users['stranger']}",
            json={"role": "billing_contact"},
            headers=owner,
        )
    )
    assert {m["user"]: m["role"] for m in account["members"]} == {
        users["owner"]: "owner",
        users["billing_contact"]: "billing_contact",
        users["member"]: "member",
        users["stranger"]: "billing_contact",
    }
    seen = ok(api.client.get("/v1/accounts", headers=api.headers("stranger")))["items"]
    assert [(a["id"], a["role"]) for a in seen] == [("corp", "billing_contact"), ("other", "owner")]

    for response in (
        api.client.put(
            f"/v1/accounts/corp/members/{users['stranger']}",
            json={"role": "owner"},
            headers=api.headers("member"),
        ),
        api.client.delete(
            f"/v1/accounts/corp/members/{users['stranger']}", headers=api.headers("member")
        ),
        api.client.delete(
            f"/v1/accounts/corp/members/{users['stranger']}",
            headers=api.headers("billing_contact"),
        ),
    ):
        refused = problem(response, 403, "forbidden")
        assert refused["params"]["account"] == "corp"

    for response in (
        api.client.delete(f"/v1/accounts/corp/members/{users['owner']}", headers=owner),
        api.client.put(
            f"/v1/accounts/corp/members/{users['owner']}", json={"role": "member"}, headers=owner
        ),
    ):
        last = problem(response, 409, "last_owner")
        assert last["params"] == {"account": "corp", "user": users["owner"]}
        assert (
            last["detail"] == f"Account corp needs an owner: user {users['owner']} is its last one."
        )

    # With a second owner, the first may go.
    ok(
        api.client.put(
            f"/v1/accounts/corp/members/{users['billing_contact']}",
            json={"role": "owner"},
            headers=owner,
        )
    )
    account = ok(api.client.delete(f"/v1/accounts/corp/members/{users['owner']}", headers=owner))
    assert users["owner"] not in {m["user"] for m in account["members"]}
    problem(api.client.get("/v1/accounts/corp", headers=owner), 404, "not_found")
    problem(
        api.client.delete(
            f"/v1/accounts/corp/members/{users['owner']}", headers=api.headers("billing_contact")
        ),
        404,
        "not_found",
    )


def test_an_admin_token_creates_accounts_and_users(api):
    token = api.headers("token", **{"Idempotency-Key": "newco"})
    created = ok(
        api.client.post(
            "/v1/accounts",
            json={"id": "newco", "name": "New Co", "locale": "fr", "vat_id": "FR12345678901"},
            headers=token,
        ),
        201,
    )
    assert created == {
        "id": "newco",
        "name": "New Co",
        "locale": "fr",
        "auto_pay": True,
        "payment_method": None,
        "tax_rate": "0",
        "vat_id": "FR12345678901",
        "role": None,
        "members": [],
    }
    replay = api.client.post(
        "/v1/accounts",
        json={"id": "newco", "name": "New Co", "locale": "fr", "vat_id": "FR12345678901"},
        headers=token,
    )
    assert replay.status_code == 201 and replay.json() == created
    problem(
        api.client.post("/v1/accounts", json={"id": "newco"}, headers=api.headers("token")),
        409,
        "duplicate_id",
    )
    problem(
        api.client.post("/v1/accounts", json={"id": "mine"}, headers=api.headers("owner")),
        403,
        "forbidden",
    )
    problem(
        api.client.post("/v1/accounts", json={"id": "mine"}, headers=api.headers("read_token")),
        403,
        "insufficient_scope",
    )

    user = ok(
        api.client.post(
            "/v1/users",
            json={"email": "boss@newco.example", "name": "Boss", "locale": "fr"},
            headers=api.headers("token"),
        ),
        201,
    )
    assert isinstance(user["id"], int)
    assert {k: v for k, v in user.items() if k != "id"} == {
        "email": "boss@newco.example",
        "name": "Boss",
        "locale": "fr",
    }
    problem(
        api.client.post(
            "/v1/users", json={"email": "boss@newco.example"}, headers=api.headers("token")
        ),
        409,
        "duplicate_id",
    )
    members = ok(
        api.client.put(
            f"/v1/accounts/newco/members/{user['id']}",
            json={"role": "owner"},
            headers=api.headers("token"),
        )
    )["members"]
    assert members == [
        {"user": user["id"], "email": "boss@newco.example", "name": "Boss", "role": "owner"}
    ]
    everyone = ok(api.client.get("/v1/accounts", headers=api.headers("token")))["items"]
    assert [a["id"] for a in everyone] == ["corp", "other", "newco"]


def test_portal_sessions_work_as_bearer_and_cookie_until_logout(api):
    users = api.world.users
    opened = ok(
        api.client.post(
            "/v1/portal-sessions",
            json={"user": users["billing_contact"]},
            headers=api.headers("token"),
        ),
        201,
    )
    session = opened["token"]
    assert session.startswith("prs_") and opened["user"] == users["billing_contact"]
    assert opened["expires_at"] == "2024-02-20T22:00:00-05:00"  # twelve hours
    bearer = {"Authorization": f"Bearer {session}"}
    accounts = ok(api.client.get("/v1/accounts", headers=bearer))["items"]
    assert [(a["id"], a["role"]) for a in accounts] == [("corp", "billing_contact")]

    api.client.cookies.set("prorata_session", session)
    try:
        assert ok(api.client.get("/v1/subscriptions/s1"))["id"] == "s1"
        out = api.client.delete("/v1/session")
        assert out.status_code == 204
        assert 'prorata_session=""' in out.headers["set-cookie"]
        assert "Max-Age=0" in out.headers["set-cookie"]
        revoked = problem(api.client.get("/v1/subscriptions/s1"), 401, "token_revoked")
        assert revoked["detail"] == "The token was revoked."
    finally:
        api.client.cookies.clear()
    revoked = api.client.get("/v1/accounts", headers=bearer)
    problem(revoked, 401, "token_revoked")
    assert revoked.headers["www-authenticate"] == "Bearer"
    problem(
        api.client.get("/v1/accounts", headers={"Authorization": "Bearer prs_unknown"}),
        401,
        "invalid_token",
    )

    second_opened = ok(
        api.client.post(
            "/v1/portal-sessions", json={"user": users["owner"]}, headers=api.headers("token")
        ),
        201,
    )
    second = second_opened["token"]
    assert second != session
    second_bearer = {"Authorization": f"Bearer {second}"}
    assert ok(api.client.get("/v1/accounts", headers=second_bearer))["items"][0]["role"] == "owner"
    api.now = api.now + timedelta(hours=12)
    expired = problem(api.client.get("/v1/accounts", headers=second_bearer), 401, "token_expired")
    # The same instant as announced (written in UTC here, unlike the rest of the API).
    expires = datetime.fromisoformat(second_opened["expires_at"])
    assert datetime.fromisoformat(expired["params"]["at"]) == expires

    problem(
        api.client.post(
            "/v1/portal-sessions", json={"user": users["owner"]}, headers=api.headers("owner")
        ),
        403,
        "forbidden",
    )
    problem(
        api.client.post(
            "/v1/portal-sessions", json={"user": users["owner"]}, headers=api.headers("read_token")
        ),
        403,
        "insufficient_scope",
    )
    problem(
        api.client.post(
            "/v1/portal-sessions", json={"user": users["rival"]}, headers=api.headers("token")
        ),
        404,
        "not_found",
    )


def test_a_subscription_through_the_api_may_bill_on_calendar_periods(api):
    """``billing_time: calendar``: the first period runs to the 1st of next month, prorated;
    a billing day other than the 1st does not go with it and changes nothing."""
    token = api.headers("token")
    ok(api.client.post("/v1/accounts", json={"id": "calco", "auto_pay": False}, headers=token), 201)
    refused = problem(
        api.client.post(
            "/v1/subscriptions",
            json={
                "account": "calco",
                "plan": "standard-monthly",
                "billing_time": "calendar",
                "billing_day": 15,
            },
            headers=token,
        ),
        400,
        "billing_day_not_calendar",
    )
    assert "15" in refused["detail"] and "calendar" in refused["detail"]
    assert ok(api.client.get("/v1/subscriptions?account=calco", headers=token))["items"] == []
    problem(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "calco", "plan": "standard-monthly", "billing_time": "weekly"},
            headers=token,
        ),
        422,
        "validation_failed",
    )
    created = ok(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "calco", "plan": "standard-monthly", "billing_time": "calendar"},
            headers=token,
        ),
        201,
    )
    (invoice,) = created["documents"]
    # 45.00 × 10/29: 20 February to 1 March of a leap year (29 days in February)
    assert [line["amount"] for line in invoice["lines"]] == ["15.52"]
    detail = ok(api.client.get(f"/v1/subscriptions/{created['subscription']['id']}", headers=token))
    assert detail["period_end"] == detail["next_due_at"] == "2024-03-01T00:00:00-05:00"


def test_a_subscription_through_the_api_may_have_a_contract_term(api):
    """``term`` as a scenario's subscribe takes it: a recurring period and ``auto_renew``
    (true when left out); the term runs from the start and the view says so."""
    token = api.headers("token")
    ok(
        api.client.post("/v1/accounts", json={"id": "termco", "auto_pay": False}, headers=token),
        201,
    )
    fixed = ok(
        api.client.post(
            "/v1/subscriptions",
            json={
                "account": "termco",
                "plan": "standard-monthly",
                "term": {"period": "annual", "auto_renew": False},
            },
            headers=token,
        ),
        201,
    )["subscription"]
    assert fixed["term"] == {
        "period": "annual",
        "auto_renew": False,
        "start": "2024-02-20T00:00:00-05:00",
        "end": "2025-02-20T00:00:00-05:00",
    }
    assert fixed["term_end"] == "2025-02-20T00:00:00-05:00"
    assert fixed["period_end"] == "2024-03-20T00:00:00-04:00"  # billed monthly all the same
    detail = ok(api.client.get(f"/v1/subscriptions/{fixed['id']}", headers=token))
    assert detail["term"] == fixed["term"]
    renewing = ok(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "termco", "plan": "standard-monthly", "term": {"period": "quarterly"}},
            headers=token,
        ),
        201,
    )["subscription"]
    assert renewing["term"]["auto_renew"] is True
    assert renewing["term"]["end"] == "2024-05-20T00:00:00-04:00"
    untermed = ok(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "termco", "plan": "standard-monthly"},
            headers=token,
        ),
        201,
    )["subscription"]
    assert (untermed["term"], untermed["term_end"]) == (None, None)


# (term, field, error type, English reason, French reason): each names the key and the value
BAD_TERMS = [
    (
        "annual",
        "term",
        "term_not_object",
        '"annual" is not a term: a term is an object with period (one of daily, weekly,',
        '"annual" n\'est pas un terme : un terme est un objet avec period (parmi daily,',
    ),
    (
        {"period": "yearly"},
        "term.period",
        "term_period_invalid",
        '"yearly" is not a term\'s length: a term is a commitment that ends or renews, so it '
        "lasts one of daily, weekly, monthly, quarterly, semiannual, annual, biennial.",
        '"yearly" n\'est pas une durée de terme : un terme est un engagement qui prend fin ou '
        "se renouvelle, il dure donc l'une de ces périodes : daily, weekly, monthly, "
        "quarterly, semiannual, annual, biennial.",
    ),
    (
        {"period": "one_time"},
        "term.period",
        "term_period_invalid",
        '"one_time" is not a term\'s length',
        '"one_time" n\'est pas une durée de terme',
    ),
    (
        {"period": 12},
        "term.period",
        "term_period_invalid",
        "12 is not a term's length",
        "12 n'est pas une durée de terme",
    ),
    (
        {"period": "annual", "auto_renew": "yes"},
        "term.auto_renew",
        "term_auto_renew_invalid",
        '"yes" is not true or false: auto_renew says whether the term renews at its end '
        "(true) or the subscription expires then (false).",
        '"yes" n\'est ni true ni false : auto_renew dit si le terme se renouvelle à son '
        "échéance (true) ou si l'abonnement prend fin alors (false).",
    ),
    (
        {"period": "annual", "auto_renew": 1},
        "term.auto_renew",
        "term_auto_renew_invalid",
        "1 is not true or false",
        "1 n'est ni true ni false",
    ),
    ({"auto_renew": True}, "term.period", "missing", "Field required", "champ obligatoire"),
    (
        {"period": "annual", "renews": True},
        "term.renews",
        "extra_forbidden",
        "Extra inputs are not permitted",
        "champ inconnu",
    ),
]


def test_a_bad_term_is_refused_by_key_and_value_in_both_languages_and_creates_nothing(api):
    token = api.headers("token")
    ok(
        api.client.post("/v1/accounts", json={"id": "termco", "auto_pay": False}, headers=token),
        201,
    )
    for n, (term, field, kind, english, french) in enumerate(BAD_TERMS):
        body = {"account": "termco", "plan": "standard-monthly", "term": term}
        for language, reason in (("en", english), ("fr", french)):
            headers = api.headers("token", **{"Accept-Language": language})
            headers["Idempotency-Key"] = f"term-{n}"  # a refusal keeps nothing, not even this
            refused = problem(
                api.client.post("/v1/subscriptions", json=body, headers=headers),
                422,
                "validation_failed",
            )
            assert [(e["field"], e["type"]) for e in refused["errors"]] == [(field, kind)], term
            (error,) = refused["errors"]
            assert error["reason"].startswith(reason), (language, error["reason"])
            assert refused["detail"].startswith(field), refused["detail"]
    assert ok(api.client.get("/v1/subscriptions?account=termco", headers=token))["items"] == []
    # the keys of the refused calls were not kept: one may now be used for a good call
    headers = api.headers("token", **{"Idempotency-Key": "term-1"})
    good = {"account": "termco", "plan": "standard-monthly", "term": {"period": "annual"}}
    ok(api.client.post("/v1/subscriptions", json=good, headers=headers), 201)
    assert len(ok(api.client.get("/v1/subscriptions?account=termco", headers=token))["items"]) == 1


def test_a_term_shorter_than_the_billing_period_is_refused_and_creates_nothing(api):
    token = api.headers("token")
    ok(
        api.client.post("/v1/accounts", json={"id": "shortco", "auto_pay": False}, headers=token),
        201,
    )
    body = {"account": "shortco", "plan": "standard-annual", "term": {"period": "quarterly"}}
    for language, reason in (
        (
            "en",
            "Term 'quarterly' is shorter than the billing period of plan standard-annual "
            "('annual'): a term commits to whole billing periods, so it lasts at least one.",
        ),
        ("fr", "Le terme 'quarterly' est plus court que la période de facturation du plan"),
    ):
        headers = api.headers("token", **{"Accept-Language": language})
        response = api.client.post("/v1/subscriptions", json=body, headers=headers)
        refused = problem(response, 400, "term_shorter_than_period")
        assert refused["detail"].startswith(reason), refused["detail"]
    assert ok(api.client.get("/v1/subscriptions?account=shortco", headers=token))["items"] == []
    # a term as long as the period, or longer, is a commitment to whole periods
    for period in ("annual", "biennial"):
        body["term"] = {"period": period}
        ok(api.client.post("/v1/subscriptions", json=body, headers=token), 201)


def test_the_subscribe_service_refuses_a_term_that_does_not_recur(api):
    """Callers of the service (not only the API) are held to the same rule, in both
    languages, with nothing created."""
    from prorata.core.calendar import PeriodUnit
    from prorata.core.model import TermSpec
    from prorata.services.errors import InvalidRequest

    robot = Principal(api.world.tenant, kind="token")
    try:
        subscriptions.subscribe(
            api.world.engine,
            robot,
            account="corp",
            plan="standard-monthly",
            term=TermSpec(PeriodUnit.ONE_TIME),
            at=api.now,
        )
    except InvalidRequest as exc:
        assert exc.code == "term_period_invalid"
        assert exc.message_in("en").startswith('"one_time" is not a term\'s length')
        assert exc.message_in("fr").startswith('"one_time" n\'est pas une durée de terme')
    else:
        raise AssertionError("a one_time term was accepted")
