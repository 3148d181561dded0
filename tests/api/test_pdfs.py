"""PDFs through the API and the renderer: invoices and credit notes (Factur-X), receipts.

Rendered after commit, stored once, served the same bytes to whoever may see the account,
"not found" for anyone else; ``prorata simulate --documents DIR`` writes a run's PDFs.
"""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import delete, func, select, update
from typer.testing import CliRunner

from prorata.adapters import schema as t
from prorata.entrypoints.cli import app as cli
from prorata.services.renderings import render_pending
from tests.conftest import SHARED_SCENARIOS, shared_scenarios_present


def text_of(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def attachments(content: bytes) -> dict[str, list[bytes]]:
    return PdfReader(io.BytesIO(content)).attachments


def renderings(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(t.renderings)).scalar_one()


def test_an_invoice_pdf_is_rendered_once_and_served_to_its_account_only(api):
    with api.world.engine.begin() as connection:
        connection.execute(
            update(t.tenants)
            .where(t.tenants.c.id == api.world.tenant)
            .values(legal_name="Acme Remote SAS", vat_id="FR40123456824", siren="123456824")
        )
    owner = api.headers("owner")
    first = api.client.get("/v1/invoices/INV-0001/pdf", headers=owner)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["content-disposition"] == 'inline; filename="INV-0001.pdf"'
    text = text_of(first.content)
    for mention in ("INV-0001", "Acme Remote SAS", "FR40123456824", "90.00"):
        assert mention in text, mention
    assert "factur-x.xml" in attachments(first.content)
    assert renderings(api.world.engine) == 1

    again = api.client.get("/v1/invoices/INV-0001/pdf", headers=api.headers("support"))
    assert again.content == first.content and renderings(api.world.engine) == 1

    hidden = api.client.get("/v1/invoices/INV-0001/pdf", headers=api.headers("stranger"))
    missing = api.client.get("/v1/invoices/INV-9999/pdf", headers=api.headers("stranger"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("INV-0001", "X") == missing.json()["detail"].replace(
        "INV-9999", "X"
    )
    wrong_type = api.client.get("/v1/credit-notes/INV-0001/pdf", headers=owner)
    assert wrong_type.status_code == 404


def test_the_renderer_renders_each_committed_document_once(api):
    owner = api.headers("owner")
    body = {"items": [{"subscription": "s1", "quantity": 3}]}
    assert api.client.post("/v1/checkout", json=body, headers=owner).status_code == 200
    with api.world.engine.connect() as connection:
        documents = connection.execute(select(func.count()).select_from(t.documents)).scalar()
    assert documents == 3  # subscribe, the renewal of Feb 15, the change
    assert render_pending(api.world.engine, now=api.now) == 3
    assert render_pending(api.world.engine, now=api.now) == 0
    assert renderings(api.world.engine) == 3
    served = api.client.get("/v1/invoices/INV-0003/pdf", headers=owner)
    with api.world.engine.connect() as connection:
        stored = connection.execute(
            select(t.renderings.c.content)
            .join(t.documents, t.documents.c.id == t.renderings.c.document_id)
            .where(t.documents.c.number == "INV-0003")
        ).scalar_one()
    assert served.content == stored


def test_a_french_credit_note_and_a_receipt(api):
    french = api.headers("stranger")  # owner of account "other", locale fr
    token = api.headers("token")
    made = api.client.post(
        "/v1/subscriptions",
        json={"account": "other", "plan": "premium-monthly", "quantity": 3},
        headers=token,
    )
    assert made.status_code == 201, made.text
    sub = made.json()["subscription"]["id"]
    # the account pays automatically: its first invoice is paid on issue, with a receipt
    assert made.json()["documents"][0]["status"] == "paid"
    (payment,) = api.client.get("/v1/payments?account=other", headers=french).json()["items"]
    receipt = api.client.get(f"/v1/payments/{payment['id']}/receipt/pdf", headers=french)
    assert receipt.status_code == 200
    assert payment["receipt"] in text_of(receipt.content)
    assert (
        receipt.content
        == api.client.get(f"/v1/payments/{payment['id']}/receipt/pdf", headers=token).content
    )
    assert (
        api.client.get(f"/v1/payments/{payment['id']}/receipt/pdf", headers=api.headers("owner"))
    ).status_code == 404

    cut = {"items": [{"subscription": sub, "quantity": 1}]}
    changed = api.client.post("/v1/checkout", json=cut, headers=french)
    assert changed.status_code == 200, changed.text
    notes = api.client.get("/v1/credit-notes?account=other", headers=french).json()["items"]
    if notes:  # the gotoassist policy credits seat cuts
        number = notes[0]["number"]
        pdf = api.client.get(f"/v1/credit-notes/{number}/pdf", headers=french)
        assert pdf.status_code == 200
        assert "Avoir" in text_of(pdf.content) and number in text_of(pdf.content)


def test_simulate_writes_every_document_as_a_pdf(tmp_path: Path):
    if not shared_scenarios_present():
        return
    scenario = next(iter(sorted(SHARED_SCENARIOS.rglob("*.yaml"))))
    folder = tmp_path / "pdf"
    result = CliRunner().invoke(cli, ["simulate", str(scenario), "--documents", str(folder)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in folder.glob("*.pdf"))
    assert written and all(name.endswith(".pdf") for name in written)
    for path in folder.glob("*.pdf"):
        assert path.stem in text_of(path.read_bytes())


def _stored_pdf(engine, number: str) -> bytes:
    with engine.connect() as connection:
        return connection.execute(
            select(t.renderings.c.content)
            .join(t.documents, t.documents.c.id == t.renderings.c.document_id)
            .where(t.documents.c.number == number)
        ).scalar_one()


def _forget_pdf(engine, number: str) -> None:
    """As if the renderer had not run yet: the run where it comes after the payment."""
    with engine.begin() as connection:
        doc_id = select(t.documents.c.id).where(t.documents.c.number == number)
        connection.execute(delete(t.renderings).where(t.renderings.c.document_id.in_(doc_id)))


def test_an_invoice_pdf_is_the_same_rendered_before_or_after_its_payment(api):
    """Whether the renderer ran before the charge or after it, the stored PDF is the same:
    it states the invoice as issued (open: no status), the payment is on its receipt."""
    owner = api.headers("owner")
    made = _subscribe_paying_by_card(api)
    assert made.status_code == 201, made.text
    (invoice,) = [d for d in made.json()["documents"] if d["type"] == "invoice"]
    number = invoice["number"]
    assert invoice["status"] == "open"  # collected by the gateway after issue

    render_pending(api.world.engine, now=api.now)
    before = _stored_pdf(api.world.engine, number)
    paid = api.client.post(f"/v1/invoices/{number}/pay", headers=owner)
    assert paid.json()["outcome"] == "succeeded", paid.text
    view = api.client.get(f"/v1/invoices/{number}", headers=owner).json()
    assert view["status"] == "paid" and view["outstanding"] == "0.00"  # the live view

    _forget_pdf(api.world.engine, number)
    assert render_pending(api.world.engine, now=api.now) == 1
    after = _stored_pdf(api.world.engine, number)
    assert after == before
    assert api.client.get(f"/v1/invoices/{number}/pdf", headers=owner).content == before
    text = text_of(before)
    assert "Status" not in text and "paid" not in text
    receipt = view["payments"][0]["id"]
    assert "Invoice paid " + number in text_of(
        api.client.get(f"/v1/payments/{receipt}/receipt/pdf", headers=owner).content
    )


def test_an_invoice_paid_on_issue_says_so_in_english_and_in_french(api):
    """Auto-pay without a gateway token: the charge is recorded with the invoice, at its
    issue instant, so its PDF may say it is paid, and says so however it is rendered."""
    english = api.client.get("/v1/invoices/INV-0001/pdf", headers=api.headers("owner"))
    contains_all(
        text_of(english.content),
        "Status Paid",
        "This invoice was paid when it was issued, on Jan 15, 2024.",
    )
    made = api.client.post(
        "/v1/subscriptions",
        json={"account": "other", "plan": "premium-monthly", "quantity": 3},
        headers=api.headers("token"),
    )
    (invoice,) = [d for d in made.json()["documents"] if d["type"] == "invoice"]
    assert invoice["status"] == "paid"
    render_pending(api.world.engine, now=api.now)
    french = _stored_pdf(api.world.engine, invoice["number"])
    contains_all(
        text_of(french),
        "Statut Payée",
        "Facture acquittée à son émission, le 20 févr. 2024.",
    )
    # a token put on file afterwards changes nothing of what it was at issue
    api.client.put(
        "/v1/accounts/other/payment-method",
        json={"type": "card", "token": "sandbox:card:succeeds"},
        headers=api.headers("stranger"),
    )
    _forget_pdf(api.world.engine, invoice["number"])
    render_pending(api.world.engine, now=api.now)
    assert _stored_pdf(api.world.engine, invoice["number"]) == french


def _subscribe_paying_by_card(api):
    """``corp`` pays through a card token, then subscribes: its invoice opens a collection
    (charged later) instead of being paid on issue."""
    api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "card", "token": "sandbox:card:succeeds"},
        headers=api.headers("billing_contact"),
    )
    return api.client.post(
        "/v1/subscriptions",
        json={"account": "corp", "plan": "standard-monthly", "quantity": 2},
        headers=api.headers("token"),
    )


def contains_all(text: str, *needles: str) -> None:
    flat = " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())
    for needle in needles:
        assert needle in flat, f"{needle!r} not in {flat!r}"


def test_the_migration_marks_the_invoices_paid_on_issue_from_their_payments(api):
    """Revision 0009 on a store written before it: the invoice whose charge was recorded
    with it is marked paid on issue; one collected by the gateway afterwards is not."""
    from alembic import command

    from prorata.adapters.database import alembic_config

    made = _subscribe_paying_by_card(api)
    (later,) = [d["number"] for d in made.json()["documents"] if d["type"] == "invoice"]
    paid = api.client.post(f"/v1/invoices/{later}/pay", headers=api.headers("owner"))
    assert paid.json()["outcome"] == "succeeded"

    def flags() -> dict[str, bool]:
        with api.world.engine.connect() as connection:
            rows = connection.execute(
                select(t.documents.c.number, t.documents.c.paid_on_issue).where(
                    t.documents.c.type == "invoice"
                )
            )
            return {number: bool(flag) for number, flag in rows}

    written = flags()
    assert written["INV-0001"] and not written[later]
    config = alembic_config(api.world.engine.url.render_as_string(hide_password=False))
    with api.world.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
        command.upgrade(config, "head")
    assert flags() == written


def test_simulate_writes_each_invoice_as_issued_not_as_at_the_end_of_the_run(tmp_path: Path):
    """``simulate --documents`` renders at the end of the run, from the in-memory book: an
    invoice paid later reads as issued; one paid on issue says so."""
    from types import SimpleNamespace

    from prorata.entrypoints.cli import write_pdfs
    from prorata.services.book import Book
    from tests.rendering import account, at, invoice

    book = Book()
    later, on_issue = invoice(number="F-1"), invoice(number="F-2", auto_pay=True)
    book.record(later, [])
    book.record(on_issue, [])
    book.mark_paid(later, at(2024, 7, 20), "card", "ref-1")
    assert [d.status for d in book.documents] == ["paid", "paid"]
    scenario = SimpleNamespace(accounts={"agence": account()})
    assert write_pdfs(scenario, book, tmp_path, seller_name="acme") == 2
    first, second = (text_of((tmp_path / f"F-{n}.pdf").read_bytes()) for n in (1, 2))
    assert "Statut" not in first and "acquittée" not in first
    assert "Statut Payée" in second and "acquittée à son émission" in second
    as_issued = tmp_path / "issued"  # the run stopped before the payment
    write_pdfs(scenario, Book(documents=[later]), as_issued, seller_name="acme")
    assert (as_issued / "F-1.pdf").read_bytes() == (tmp_path / "F-1.pdf").read_bytes()
