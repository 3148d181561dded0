"""What the customer reads: line descriptions, explanations and refusals, in fr and en.

Pure functions of their arguments; amounts and dates are formatted by Babel for the locale.
Unknown locales fall back to English wording with the locale's number formats.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

REFUSALS = {
    "notice_period_passed": {
        "en": "Changes must be submitted at least {days} days before the renewal date "
        "({renewal}); the contract renews on its current terms.",
        "fr": "Les modifications doivent être soumises au moins {days} jours avant la date de "
        "renouvellement ({renewal}) ; le contrat est renouvelé selon ses termes actuels.",
    },
    "change_forbidden": {
        "en": "This policy does not allow a {kind} online; please contact customer support.",
        "fr": "Cette politique ne permet pas ce changement en ligne ({kind}) ; "
        "veuillez contacter l'assistance clientèle.",
    },
    "maintenance_expired": {
        "en": "Maintenance expired on {until}: renew it before upgrading this order.",
        "fr": "La maintenance a expiré le {until} : renouvelez-la avant de mettre à jour "
        "cette commande.",
    },
    "cross_product_upgrade": {
        "en": "{target} is not an upgrade of {current}: licences cannot move to another "
        "product or platform.",
        "fr": "{target} n'est pas une mise à jour de {current} : une licence ne peut pas passer "
        "à un autre produit ou à une autre plateforme.",
    },
    "not_an_upgrade": {
        "en": "{target} is not an upgrade of {current}.",
        "fr": "{target} n'est pas une mise à jour de {current}.",
    },
    "not_authorized": {
        "en": "{who} may not change this subscription.",
        "fr": "{who} ne peut pas modifier cet abonnement.",
    },
    "unknown_plan": {
        "en": "There is no {what} plan for this product.",
        "fr": "Il n'existe pas de forfait {what} pour ce produit.",
    },
    "quantity_invalid": {
        "en": "Quantity {quantity} is not allowed: {why}.",
        "fr": "La quantité {quantity} n'est pas permise : {why}.",
    },
    "subscription_not_active": {
        "en": "The subscription is {status}; it cannot be changed.",
        "fr": "L'abonnement est {status} ; il ne peut pas être modifié.",
    },
    "already_pending": {
        "en": "A request for this subscription is already waiting (request {request}).",
        "fr": "Une demande pour cet abonnement est déjà en attente (demande {request}).",
    },
    "no_change": {
        "en": "The requested terms are the current terms.",
        "fr": "Les conditions demandées sont les conditions actuelles.",
    },
    "unknown_request": {
        "en": "There is no pending request {request}.",
        "fr": "Il n'y a pas de demande {request} en attente.",
    },
    "unknown_invoice": {
        "en": "There is no open invoice {invoice}.",
        "fr": "Il n'y a pas de facture {invoice} à payer.",
    },
    "awaiting_payment": {
        "en": "A change of this subscription is waiting for invoice {invoice} to be paid.",
        "fr": "Une modification de cet abonnement attend le paiement de la facture {invoice}.",
    },
    "nothing_scheduled": {
        "en": "Nothing is scheduled for this subscription.",
        "fr": "Rien n'est programmé pour cet abonnement.",
    },
    "cancellation_scheduled": {
        "en": "This subscription ends on {at}: withdraw the cancellation before changing "
        "its billing cycle.",
        "fr": "Cet abonnement prend fin le {at} : annulez la résiliation avant de changer "
        "son cycle de facturation.",
    },
    "period_past_term": {
        "en": "The billing period this change would start ends on {end}, after the "
        "contract's term ends on {term_end}: change the billing cycle at the end of the term.",
        "fr": "La période de facturation que cette modification ouvrirait prend fin le {end}, "
        "après la fin du terme du contrat le {term_end} : changez le cycle de facturation à "
        "la fin du terme.",
    },
    "seats_assigned": {
        "en": "{assigned} seats are assigned to users; release {excess} of them before "
        "reducing to {quantity}.",
        "fr": "{assigned} postes sont attribués à des utilisateurs ; libérez-en {excess} avant "
        "de passer à {quantity}.",
    },
    "no_seat_available": {
        "en": "All {quantity} seats are assigned; add seats before assigning another user.",
        "fr": "Les {quantity} postes sont tous attribués ; ajoutez des postes avant d'en "
        "attribuer un autre.",
    },
    "seat_already_assigned": {
        "en": "This user already holds a seat of this subscription.",
        "fr": "Cet utilisateur a déjà un poste de cet abonnement.",
    },
}

_KIND_NAMES = {
    "en": {
        "upgrade": "upgrade",
        "downgrade": "downgrade",
        "quantity_increase": "seat increase",
        "quantity_decrease": "seat reduction",
        "period_change": "change of billing cycle",
        "cancel": "cancellation",
    },
    "fr": {
        "upgrade": "passage à un niveau supérieur",
        "downgrade": "passage à un niveau inférieur",
        "quantity_increase": "ajout de postes",
        "quantity_decrease": "réduction de postes",
        "period_change": "changement de fréquence de facturation",
        "cancel": "annulation",
    },
}

_LINE_WORDS = {
    "en": {
        "recurring": "{plan} × {qty}",
        "proration_charge": "Remaining time on {plan} × {qty}",
        "proration_credit": "Unused time on {plan} × {qty}",
        "used_time": "Time used on {plan} × {qty}",
        "proration": "Change to {plan} × {qty} for the rest of the period",
        "proration_reduction": "Removal of {plan} × {qty} for the rest of the period",
        "licence": "Upgrade to {plan} (original order credited)",
        "licence_purchase": "{plan} licence × {qty}",
        "maintenance": "Maintenance renewal for {plan}",
    },
    "fr": {
        "recurring": "{plan} × {qty}",
        "proration_charge": "Temps restant sur {plan} × {qty}",
        "proration_credit": "Temps non utilisé sur {plan} × {qty}",
        "used_time": "Temps utilisé sur {plan} × {qty}",
        "proration": "Passage à {plan} × {qty} pour le reste de la période",
        "proration_reduction": "Retrait de {plan} × {qty} pour le reste de la période",
        "licence": "Mise à jour vers {plan} (commande d'origine créditée)",
        "licence_purchase": "Licence {plan} × {qty}",
        "maintenance": "Renouvellement de la maintenance de {plan}",
    },
}

_ROLE_NAMES = {
    "en": {
        "owner": "The account owner",
        "billing_contact": "The billing contact",
        "member": "A member of the account",
        "support": "Customer support",
        "account_manager": "The account manager",
        "other": "A user of another account",
    },
    "fr": {
        "owner": "Le titulaire du compte",
        "billing_contact": "Le contact de facturation",
        "member": "Un membre du compte",
        "support": "L'assistance clientèle",
        "account_manager": "Le gestionnaire de compte",
        "other": "Un utilisateur d'un autre compte",
    },
}


def lang(locale: str) -> str:
    language = locale.replace("-", "_").split("_")[0]
    return language if language in ("fr", "en") else "en"


def when(moment: datetime, locale: str, seconds: bool = False) -> str:
    """A date (or a datetime, to the second) as the locale writes it, in ``moment``'s own
    zone. Cached by the wall time shown: aware datetimes of one instant in two zones are
    equal (and hash alike), so caching on ``moment`` itself gave one zone's date to the
    other's."""
    if seconds:
        return _when_seconds(moment, moment.tzinfo, locale)
    return _date(moment.date(), locale)


@lru_cache(maxsize=4096)
def _when_seconds(moment: datetime, _zone: object, locale: str) -> str:
    # ``_zone`` is in the key only: with it, one instant in two zones is two entries
    return format_datetime(moment, "medium", locale=locale.replace("-", "_"))


@lru_cache(maxsize=4096)
def _date(day: date, locale: str) -> str:
    return format_date(day, "medium", locale=locale.replace("-", "_"))


@lru_cache(maxsize=4096)
def _money(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=locale)


@lru_cache(maxsize=4096)
def _share(ratio: Fraction, locale: str) -> str:
    value = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    return format_decimal(value, format="0.######", locale=locale)


_STATUS_NAMES = {
    "en": {"past_due": "past due"},
    "fr": {
        "active": "actif",
        "past_due": "en retard de paiement",
        "suspended": "suspendu",
        "cancelled": "résilié",
        "expired": "expiré",
    },
}


def refusal(code: str, locale: str, **params: object) -> str:
    template = REFUSALS.get(code, {}).get(lang(locale)) or code
    if isinstance(status := params.get("status"), str):
        params["status"] = _STATUS_NAMES[lang(locale)].get(status, status)
    return template.format(**params)


_VOID_WORDS = {
    "en": "Cancellation of invoice {invoice} ({why})",
    "fr": "Annulation de la facture {invoice} ({why})",
}
_VOID_REASONS = {
    "en": {"change_dropped": "change not paid in time"},
    "fr": {"change_dropped": "modification non payée à temps"},
}


def void_description(invoice: str, why: str, locale: str) -> str:
    """The line of a credit note that cancels an unpaid invoice."""
    language = lang(locale)
    return _VOID_WORDS[language].format(invoice=invoice, why=_VOID_REASONS[language][why])


def kind_name(kind: str, locale: str) -> str:
    return _KIND_NAMES[lang(locale)].get(kind, kind)


def role_name(role: str, locale: str) -> str:
    return _ROLE_NAMES[lang(locale)].get(role, role)


@lru_cache(maxsize=4096, typed=True)  # a renewal words the same few lines again and again
def line_description(kind: str, plan: str, quantity: int, locale: str) -> str:
    return _LINE_WORDS[lang(locale)][kind].format(plan=plan, qty=quantity)


def _shown_span(span: tuple[datetime, datetime], locale: str, seconds: bool) -> tuple[str, str]:
    start, end = span
    if not seconds and end.date() > start.date():
        end = end - timedelta(days=1)  # the last day included
    return when(start, locale, seconds), when(end, locale, seconds)


def explain_proration(
    *,
    locale: str,
    currency: str,
    amount: Decimal,
    quantity: int,
    ratio: Fraction,
    span: tuple[datetime, datetime],
    period: tuple[datetime, datetime],
    used: tuple[int, int],
    unit: str,
    rounding: str,
    ratio_digits: int | None,
    rounded: bool = True,
    arithmetic: str = "exact",
) -> str:
    """Why a prorated line costs what it costs: rate, share of the period, rounding.

    Counted in days, spans are shown from their first to their last day included (as on
    the documents); counted in seconds, from instant to instant (end excluded).
    ``rounded=False`` leaves out the rounding (a part of :func:`explain_difference`);
    ``arithmetic="binary64"`` says the amount was computed in double precision."""
    loc = locale.replace("-", "_")
    seconds = unit == "second"
    money = _money(abs(amount), currency, loc)
    share = _share(ratio, loc)
    start, end = _shown_span(span, locale, seconds)
    pstart, pend = _shown_span(period, locale, seconds)
    num, den = used
    if lang(locale) == "fr":
        what = "secondes" if seconds else "jours"
        upto = "" if seconds else " inclus"
        text = (
            f"{money} × {quantity} × {num}/{den} {what} (du {start} au {end}{upto}, "
            f"sur la période du {pstart} au {pend}{upto}) = part {share}"
        )
        if ratio_digits is not None:
            text += f", arrondie à {ratio_digits} décimales"
        if arithmetic == "binary64":
            per = "de la seconde" if seconds else "du jour"
            text += f" ; calculé en double précision (binary64 : prix {per}, puis montant)"
        return text + (f" ; montant arrondi une fois ({rounding})." if rounded else "")
    what = "seconds" if seconds else "days"
    upto = "" if seconds else " inclusive"
    text = (
        f"{money} × {quantity} × {num}/{den} {what} ({start} to {end}{upto}, "
        f"of the period {pstart} to {pend}{upto}) = share {share}"
    )
    if ratio_digits is not None:
        text += f", rounded to {ratio_digits} digits"
    if arithmetic == "binary64":
        per = "second" if seconds else "day"
        text += f"; computed in double precision (binary64: price per {per}, then amount)"
    return text + (f"; amount rounded once ({rounding})." if rounded else "")


def explain_difference(charged: str, credited: str, locale: str, rounding: str) -> str:
    """A difference of two prorated shares (new terms less old ones), rounded once."""
    if lang(locale) == "fr":
        return f"{charged} − {credited} ; montant arrondi une fois ({rounding})."
    return f"{charged} − {credited}; amount rounded once ({rounding})."
