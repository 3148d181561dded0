"""Rendering throughput: invoices and credit notes to Factur-X PDF/A-3 per second.

A mix: one-line and three-line invoices (a month of seats, a proration charge and a
proration credit), a twelve-line invoice, credit notes, in French and in English, with
20 % VAT, account credit applied and one intra-EU reverse charge. Each is the whole
rendering: sheet, CII XML and its XSD validation, layout with fpdf2 (fonts subset and
embedded), Factur-X embedding and the pass that dates the metadata. Prints one line per
kind, then ``documents_per_s=<number>`` over the whole mix.

    .venv/bin/python bench/render.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from prorata.core.documents import Line, issue_credit_note, issue_invoice
from prorata.core.model import Account
from prorata.core.money import Money
from prorata.rendering import Party, render_document

PARIS = ZoneInfo("Europe/Paris")
SELLER = Party(
    name="Aircall SAS",
    address=("11 rue Saint-Georges", "75009 Paris"),
    country="FR",
    vat_id="FR12807437595",
    siren="807 437 595",
)
BUYERS = {
    "fr": Party(name="Agence Durand", address=("3 place Bellecour", "69002 Lyon"), vat_id="FR4"),
    "de": Party(name="Muster GmbH", address=("10115 Berlin",), country="DE", vat_id="DE1"),
}


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 9, 30, tzinfo=PARIS)


def line(kind: str, quantity: int, amount: str, start: datetime, ratio: Fraction) -> Line:
    return Line(
        kind=kind,
        description=f"Pro × {quantity}",
        subscription="s1",
        plan="pro-m",
        quantity=quantity,
        amount=Money.of(amount, "EUR"),
        start=start,
        end=at(8, 6),
        fraction=ratio,
        unit_price=Decimal("29.00"),
        explanation="" if ratio == 1 else f"29,00 € × {quantity} × {ratio} = part {ratio}",
    )


def documents():
    """(name, document, buyer, locale) for each kind of the mix."""
    account = Account(id="a", locale="fr", auto_pay=False, tax_rate=Decimal(20))
    exempt = replace(account, tax_rate=Decimal(0))
    month = line("recurring", 5, "145.00", at(7, 6), Fraction(1))
    charge = line("proration_charge", 3, "75.77", at(7, 10), Fraction(27, 31))
    credit = line("proration_credit", 2, "-50.52", at(7, 10), Fraction(27, 31))
    euros = Money.of("20.00", "EUR")

    def invoice(lines, acct=account):
        doc, _ = issue_invoice(
            number="F-1",
            issued_at=at(7, 10),
            account=acct,
            currency="EUR",
            lines=lines,
            credit_balance=euros,
            rounding="half_up",
        )
        return doc

    def note(locale_lines):
        doc, _ = issue_credit_note(
            number="AV-1",
            issued_at=at(7, 10),
            account=account,
            currency="EUR",
            lines=locale_lines,
            refers_to="F-0",
            credited_to="account",
            rounding="half_up",
        )
        return doc

    fr, de = BUYERS["fr"], BUYERS["de"]
    return [
        ("invoice 1 line fr", invoice([month]), fr, "fr"),
        ("invoice 3 lines en", invoice([month, charge, credit]), fr, "en"),
        ("invoice 12 lines fr", invoice([month, charge, credit] * 4), fr, "fr"),
        ("reverse charge en", invoice([month, charge], exempt), de, "en"),
        ("credit note fr", note([credit.negated()]), fr, "fr"),
        ("credit note en", note([credit.negated(), credit.negated()]), fr, "en"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time for the whole mix")
    args = parser.parse_args()
    mix = documents()
    for _, doc, buyer, locale in mix:  # warm up: imports, caches, the XSD
        render_document(doc, seller=SELLER, buyer=buyer, locale=locale)
    counts = dict.fromkeys((name for name, *_ in mix), 0)
    spent = dict.fromkeys(counts, 0.0)
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        for name, doc, buyer, locale in mix:
            t0 = time.perf_counter()
            render_document(doc, seller=SELLER, buyer=buyer, locale=locale)
            spent[name] += time.perf_counter() - t0
            counts[name] += 1
    elapsed = time.perf_counter() - started
    for name, count in counts.items():
        print(f"{name:20s} documents={count:5d} ms_per_document={1000 * spent[name] / count:.1f}")
    print(f"documents_per_s={sum(counts.values()) / elapsed:.1f}")


if __name__ == "__main__":
    main()
