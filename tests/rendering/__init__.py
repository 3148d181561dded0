"""Documents to render, built through the core's issue functions, and readers of the
rendered PDFs (text and embedded XML) for the rendering tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from io import BytesIO
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from prorata.core.documents import CreditNote, Invoice, Line, issue_credit_note, issue_invoice
from prorata.core.model import Account
from prorata.core.money import Money
from prorata.rendering import Party

PARIS = ZoneInfo("Europe/Paris")

SELLER = Party(
    name="Aircall SAS",
    address=("11 rue Saint-Georges", "75009 Paris"),
    country="FR",
    vat_id="FR12807437595",
    siren="807 437 595",
    email="billing@aircall.example",
)
BUYER_FR = Party(
    name="Agence Durand",
    address=("3 place Bellecour", "69002 Lyon"),
    country="FR",
    vat_id="FR40303265045",
)
BUYER_DE = Party(
    name="Muster GmbH",
    address=("Hauptstraße 5", "Hinterhaus", "10115 Berlin"),
    country="DE",
    vat_id="DE123456789",
)
BUYER_US = Party(name="Acme Inc.", address=("1 Main St", "Springfield, IL 62701"), country="US")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def recurring(quantity: int = 5, price: str = "290.00") -> Line:
    """A full month of a per-seat plan: 6 July to 6 August (exclusive)."""
    return Line(
        kind="recurring",
        description=f"Pro × {quantity}",
        subscription="s1",
        plan="pro-m",
        quantity=quantity,
        amount=eur(str(Decimal(price) * quantity)),
        start=at(2024, 7, 6),
        end=at(2024, 8, 6),
        fraction=Fraction(1),
        unit_price=Decimal(price),
    )


def proration_credit() -> Line:
    """Seed 002's credit: 4 users × 30.00 × 27/31 days = 104.52, as an invoice line."""
    return Line(
        kind="proration_credit",
        description="Temps non utilisé sur Essentials × 4",
        subscription="s1",
        plan="essentials",
        quantity=4,
        amount=eur("-104.52"),
        start=at(2024, 7, 10),
        end=at(2024, 8, 6),
        fraction=Fraction(27, 31),
        unit_price=Decimal("30.00"),
        explanation="30,00 € × 4 × 27/31 jours (du 10 juil. 2024 au 6 août 2024, sur la "
        "période du 6 juil. 2024 au 6 août 2024) = part 0,870968 ; montant arrondi une fois "
        "(half_up).",
    )


def account(rate: str = "20", *, auto_pay: bool = False, vat_id: str | None = None) -> Account:
    return Account(
        id="agence", locale="fr", auto_pay=auto_pay, tax_rate=Decimal(rate), vat_id=vat_id
    )


def invoice(
    lines: tuple[Line, ...] | None = None,
    *,
    rate: str = "20",
    credit: str = "100.00",
    auto_pay: bool = False,
    number: str = "F-2024-0042",
) -> Invoice:
    """By default: a month of 5 seats, a proration credit, 20 % VAT, 100.00 of credit."""
    doc, _ = issue_invoice(
        number=number,
        issued_at=at(2024, 7, 10, 9, 30),
        account=account(rate, auto_pay=auto_pay),
        currency="EUR",
        lines=lines if lines is not None else (recurring(), proration_credit()),
        credit_balance=eur(credit),
        rounding="half_up",
    )
    return doc


def credit_note(
    *, rate: str = "20", credited_to: str = "account", refers_to: str | None = "F-2024-0040"
) -> CreditNote:
    doc, _ = issue_credit_note(
        number="AV-2024-0007",
        issued_at=at(2024, 7, 10, 9, 30),
        account=account(rate),
        currency="EUR",
        lines=(proration_credit().negated(),),
        refers_to=refers_to,
        credited_to=credited_to,
        rounding="half_up",
    )
    return doc


def flat(text: str) -> str:
    """Text with every run of spaces (Babel's no-break and narrow no-break spaces too) as
    one space, to compare extracted text with what we expect."""
    return " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(BytesIO(pdf))
    return flat("\n".join(page.extract_text() for page in reader.pages))


def pages(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


def attachments(pdf: bytes) -> dict[str, bytes]:
    reader = PdfReader(BytesIO(pdf))
    return {name: contents[0] for name, contents in reader.attachments.items()}
