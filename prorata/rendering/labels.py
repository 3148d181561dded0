"""The words of rendered documents, in French and English, and the legal mentions.

Documents are written in the account's language when it is French or English, with that
locale's formats (``fr_CA`` writes French with Canadian formats); any other locale gets
the whole document in English (words and formats), so that a page never mixes languages.
Amounts and dates are formatted by Babel through :mod:`prorata.core.money` and
:mod:`prorata.core.wording`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from functools import cache

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_decimal, format_percent

from prorata.core import wording
from prorata.core.money import Money, minor_unit
from prorata.rendering.sheet import Party, Sheet

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "invoice": "Facture",
        "corrected_invoice": "Facture corrigée",
        "credit_note": "Avoir",
        "receipt": "Reçu de paiement",
        "number": "Numéro",
        "issue_date": "Date d'émission",
        "due_date": "Date d'échéance",
        "status": "Statut",
        "status_paid": "Payée",
        "status_credited": "Rien à payer (crédit ajouté)",
        "seller": "Émetteur",
        "buyer": "Client",
        "vat_id": "N° TVA intracommunautaire",
        "siren": "SIREN",
        "email": "E-mail",
        "col_description": "Désignation",
        "col_quantity": "Qté",
        "col_unit_price": "Prix unitaire HT",
        "col_amount": "Montant HT",
        "period": "Période : du {start} au {end} inclus",
        "share": "Prorata : {share} de la période",
        "vat_rate": "Taux de TVA",
        "vat_basis": "Base HT",
        "vat_amount": "Montant TVA",
        "subtotal": "Total HT",
        "tax": "TVA",
        "total": "Total TTC",
        "credit_applied": "Crédit appliqué",
        "credit_added": "Crédit ajouté à votre compte",
        "amount_due": "Net à payer",
        "refers_to": "Avoir sur la facture {number}",
        "credited_account": "Montant crédité sur le solde de votre compte : il sera déduit de "
        "vos prochaines factures.",
        "credited_refund": "Montant remboursé sur votre moyen de paiement.",
        "credited_invoice": "Montant déduit de la facture {number}.",
        "credited_invoice_unknown": "Montant déduit de la facture qu'il corrige.",
        "reverse_charge": "Autoliquidation – article 196 de la directive 2006/112/CE du "
        "Conseil : la TVA est due par le preneur.",
        "terms_days": "Paiement à {days} jours date de facture, au plus tard le {due}.",
        "terms_receipt": "Paiement à réception de la facture, le {due}.",
        "no_discount": "Pas d'escompte pour paiement anticipé.",
        "late_penalties": "Tout retard de paiement entraîne des pénalités au taux de trois "
        "fois le taux d'intérêt légal (article L441-10 du Code de commerce).",
        "recovery_indemnity": "Indemnité forfaitaire pour frais de recouvrement en cas de "
        "retard de paiement : {indemnity} (article D441-5 du Code de commerce).",
        "terms_paid": "Facture acquittée à son émission, le {date}.",
        "terms_credit_added": "Le montant de cette facture est ajouté au crédit de votre "
        "compte ; il n'y a rien à payer.",
        "page": "Page {page}/{pages}",
        "receipt_number": "Reçu n°",
        "paid_at": "Date du paiement",
        "amount_paid": "Montant payé",
        "method": "Moyen de paiement",
        "invoice_paid": "Facture réglée",
        "invoice_date": "Date de la facture",
        "invoice_total": "Total de la facture TTC",
        "invoice_due": "Montant dû sur la facture",
        "credited_before": "Avoirs déduits de la facture",
        "paid_before": "Paiements antérieurs",
        "left_after": "Reste à payer après ce paiement",
        "received_from": "Reçu de",
        "receipt_text": "Nous accusons réception de votre paiement de {amount} le {date} "
        "pour la facture {number}. Merci.",
        "receipt_not_invoice": "Ce reçu atteste un paiement ; il ne remplace pas la facture.",
    },
    "en": {
        "invoice": "Invoice",
        "corrected_invoice": "Corrected invoice",
        "credit_note": "Credit note",
        "receipt": "Payment receipt",
        "number": "Number",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "status": "Status",
        "status_paid": "Paid",
        "status_credited": "Nothing to pay (credit added)",
        "seller": "From",
        "buyer": "Customer",
        "vat_id": "VAT number",
        "siren": "SIREN",
        "email": "Email",
        "col_description": "Description",
        "col_quantity": "Qty",
        "col_unit_price": "Unit price excl. VAT",
        "col_amount": "Amount excl. VAT",
        "period": "Period: {start} to {end} inclusive",
        "share": "Prorated: {share} of the period",
        "vat_rate": "VAT rate",
        "vat_basis": "Taxable amount",
        "vat_amount": "VAT amount",
        "subtotal": "Total excl. VAT",
        "tax": "VAT",
        "total": "Total incl. VAT",
        "credit_applied": "Credit applied",
        "credit_added": "Credit added to your account",
        "amount_due": "Amount due",
        "refers_to": "Credit note for invoice {number}",
        "credited_account": "Credited to your account balance: it will be deducted from your "
        "next invoices.",
        "credited_refund": "Refunded to your payment method.",
        "credited_invoice": "Deducted from invoice {number}.",
        "credited_invoice_unknown": "Deducted from the invoice it corrects.",
        "reverse_charge": "Reverse charge – Article 196 of Council Directive 2006/112/EC: "
        "VAT is due by the customer.",
        "terms_days": "Payment within {days} days of the invoice date, by {due} at the latest.",
        "terms_receipt": "Payment on receipt of the invoice, on {due}.",
        "no_discount": "No discount for early payment.",
        "late_penalties": "Late payment incurs penalties at three times the French legal "
        "interest rate (article L441-10 of the French Commercial Code).",
        "recovery_indemnity": "Fixed indemnity for recovery costs in case of late payment: "
        "{indemnity} (article D441-5 of the French Commercial Code).",
        "terms_paid": "This invoice was paid when it was issued, on {date}.",
        "terms_credit_added": "The amount of this invoice is added to your account credit; "
        "there is nothing to pay.",
        "page": "Page {page}/{pages}",
        "receipt_number": "Receipt no.",
        "paid_at": "Payment date",
        "amount_paid": "Amount paid",
        "method": "Payment method",
        "invoice_paid": "Invoice paid",
        "invoice_date": "Invoice date",
        "invoice_total": "Invoice total incl. VAT",
        "invoice_due": "Amount due on the invoice",
        "credited_before": "Credit notes deducted from the invoice",
        "paid_before": "Earlier payments",
        "left_after": "Left to pay after this payment",
        "received_from": "Received from",
        "receipt_text": "We acknowledge receipt of your payment of {amount} on {date} for "
        "invoice {number}. Thank you.",
        "receipt_not_invoice": "This receipt confirms a payment; it does not replace the invoice.",
    },
}

METHODS = {
    "fr": {
        "card": "Carte bancaire",
        "paypal": "PayPal",
        "sepa_debit": "Prélèvement SEPA",
        "bank_transfer": "Virement bancaire",
        "transfer": "Virement bancaire",
        "check": "Chèque",
        "cash": "Espèces",
        "credit": "Crédit du compte",
        "account_credit": "Crédit du compte",
    },
    "en": {
        "card": "Card",
        "paypal": "PayPal",
        "sepa_debit": "SEPA Direct Debit",
        "bank_transfer": "Bank transfer",
        "transfer": "Bank transfer",
        "check": "Cheque",
        "cash": "Cash",
        "credit": "Account credit",
        "account_credit": "Account credit",
    },
}

RECOVERY_INDEMNITY = Money.of("40", "EUR")  # Code de commerce, D441-5


@cache
def resolve(locale: str) -> tuple[str, str]:
    """The language of the words (fr | en) and the Babel locale of the formats."""
    language = wording.lang(locale or "en")
    if language != (locale or "").replace("-", "_").split("_")[0]:
        return "en", "en"
    try:
        return language, str(Locale.parse(locale.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return language, language


class Words:
    """The labels and formats of one locale."""

    def __init__(self, locale: str) -> None:
        self.language, self.locale = resolve(locale)
        self._labels = LABELS[self.language]

    def __call__(self, key: str, **params: object) -> str:
        text = self._labels[key]
        return text.format(**params) if params else text

    def labelled(self, key: str, value: str) -> str:
        """``label : value`` (French typography) or ``label: value``."""
        return f"{self(key)}{' : ' if self.language == 'fr' else ': '}{value}"

    def money(self, amount: Money) -> str:
        return amount.format(self.locale)

    def price(self, value: Decimal, currency: str) -> str:
        """A unit price: with the currency's digits, or all of its own if it has more."""
        if value == value.quantize(minor_unit(currency)):
            return self.money(Money(value.quantize(minor_unit(currency)), currency))
        return format_currency(
            value, currency, locale=self.locale, currency_digits=False, decimal_quantization=False
        )

    def date(self, day: date | datetime) -> str:
        moment = day if isinstance(day, datetime) else datetime.combine(day, time(0))
        return wording.when(moment, self.locale)

    def rate(self, rate: Decimal) -> str:
        return format_percent(rate / 100, locale=self.locale, decimal_quantization=False)

    def number(self, value: Decimal | int) -> str:
        return format_decimal(value, format="#,##0.######", locale=self.locale)

    def country(self, code: str) -> str:
        return _territories(self.locale).get(code.upper(), code)

    def method(self, method: str | None) -> str:
        if not method:
            return "–"
        return METHODS[self.language].get(method, method.replace("_", " "))


@cache
def _territories(locale: str) -> dict[str, str]:
    return dict(Locale.parse(locale).territories)


# -- mentions -------------------------------------------------------------------------------


def late_payment_mentions(words: Words, seller: Party) -> list[tuple[str, str]]:
    """The French B2B payment mentions (Code de commerce) with their EN 16931 note subject
    codes: no early-payment discount (AAB), late-payment penalties (PMD), the fixed recovery
    indemnity (PMT). Only for a French seller: they come from French law."""
    if seller.country.upper() != "FR":
        return []
    indemnity = words.money(RECOVERY_INDEMNITY)
    return [
        (words("no_discount"), "AAB"),
        (words("late_penalties"), "PMD"),
        (words("recovery_indemnity", indemnity=indemnity), "PMT"),
    ]


def payment_terms(sheet: Sheet, seller: Party, words: Words) -> str:
    """An invoice's payment terms: the delay and due date, then the French B2B mentions."""
    due = words.date(sheet.due_date) if sheet.due_date else ""
    if sheet.payment_terms_days:
        text = words("terms_days", days=sheet.payment_terms_days, due=due)
    else:
        text = words("terms_receipt", due=due)
    return " ".join([text, *(m for m, _ in late_payment_mentions(words, seller))])


def credited(sheet: Sheet, words: Words) -> str:
    """Where a credit note's amount went."""
    if sheet.credited_to == "refund":
        return words("credited_refund")
    if sheet.credited_to == "invoice":
        if sheet.refers_to:
            return words("credited_invoice", number=sheet.refers_to)
        return words("credited_invoice_unknown")
    return words("credited_account")
