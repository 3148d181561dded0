"""The messages of service and API errors, in English and French.

Each error has a stable ``code`` (what clients branch on) and a message ``key`` (which
sentence explains it; several keys may share a code). :func:`render` fills a template with
the error's parameters in the caller's language; unknown languages read English. The
policy's own refusals are worded by :mod:`prorata.core.wording`, not here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime

from prorata.core.wording import lang, when

NOUNS = {
    "en": {
        "subscription": "Subscription",
        "account": "Account",
        "user": "User",
        "request": "Request",
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "document": "Document",
        "payment": "Payment",
        "cart": "Cart",
        "cart_item": "Cart item",
        "webhook_endpoint": "Webhook endpoint",
        "token": "API token",
        "route": "Resource",
    },
    "fr": {
        "subscription": "L'abonnement",
        "account": "Le compte",
        "user": "L'utilisateur",
        "request": "La demande",
        "invoice": "La facture",
        "credit_note": "L'avoir",
        "document": "Le document",
        "payment": "Le paiement",
        "cart": "Le panier",
        "cart_item": "L'article du panier",
        "webhook_endpoint": "Le point de réception webhook",
        "token": "Le jeton d'API",
        "route": "La ressource",
    },
}

ROLES = {
    "en": {"owner": "owner", "billing_contact": "billing contact", "member": "member"},
    "fr": {"owner": "titulaire", "billing_contact": "contact de facturation", "member": "membre"},
}

ACTIONS = {
    "en": {
        "decide": "decide requests",
        "webhooks": "manage webhook endpoints",
        "accounts": "manage accounts and users",
        "tokens": "manage API tokens",
        "sessions": "open portal sessions",
        "audit": "read the audit trail",
        "credit_notes": "issue credit notes",
    },
    "fr": {
        "decide": "traiter les demandes",
        "webhooks": "gérer les points de réception webhook",
        "accounts": "gérer les comptes et les utilisateurs",
        "tokens": "gérer les jetons d'API",
        "sessions": "ouvrir des sessions du portail",
        "audit": "consulter le journal d'audit",
        "credit_notes": "émettre des avoirs",
    },
}

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "not_found": {
        "en": "{noun} {id} does not exist.",
        "fr": "{noun} {id} n'existe pas.",
    },
    "not_a_member": {
        "en": "User {user} is not a user of account {account}.",
        "fr": "L'utilisateur {user} n'est pas un utilisateur du compte {account}.",
    },
    "no_seat_held": {
        "en": "User {user} holds no seat of subscription {subscription}.",
        "fr": "L'utilisateur {user} n'occupe aucun siège de l'abonnement {subscription}.",
    },
    "role_cannot_change": {
        "en": "As {role_name} of account {account}, you may not change its subscriptions; "
        "ask its owner or billing contact.",
        "fr": "En tant que {role_name} du compte {account}, vous ne pouvez pas modifier ses "
        "abonnements ; demandez à son titulaire ou à son contact de facturation.",
    },
    "role_cannot_manage": {
        "en": "As {role_name} of account {account}, you may not manage its users; ask its owner.",
        "fr": "En tant que {role_name} du compte {account}, vous ne pouvez pas gérer ses "
        "utilisateurs ; demandez à son titulaire.",
    },
    "staff_only": {
        "en": "Only the seller's support, account managers or API tokens may {action}.",
        "fr": "Seuls l'assistance du vendeur, les gestionnaires de compte ou les jetons d'API "
        "peuvent {action}.",
    },
    "member_cannot_subscribe": {
        "en": "A member of account {account} may not subscribe; ask its owner.",
        "fr": "Un membre du compte {account} ne peut pas souscrire ; demandez à son titulaire.",
    },
    "version_conflict": {
        "en": "Subscription {subscription} is at version {found}, not {expected}: it changed "
        "since it was read; preview again.",
        "fr": "L'abonnement {subscription} est à la version {found}, pas {expected} : il a "
        "changé depuis sa lecture ; refaites l'aperçu.",
    },
    "changed_meanwhile": {
        "en": "Subscription {subscription} changed meanwhile; retry.",
        "fr": "L'abonnement {subscription} a changé entre-temps ; réessayez.",
    },
    "unknown_plan": {
        "en": "Plan {plan!r} is not in the catalog.",
        "fr": "Le forfait {plan!r} n'est pas au catalogue.",
    },
    "quantity_invalid": {
        "en": "Quantity {quantity!r}: expected a whole number of at least 1.",
        "fr": "Quantité {quantity!r} : un nombre entier d'au moins 1 est attendu.",
    },
    "invalid_period": {
        "en": "Period {period!r}: expected one of {choices}.",
        "fr": "Période {period!r} : valeurs possibles {choices}.",
    },
    "invalid_timing": {
        "en": "Timing {timing!r}: expected immediate or end_of_term.",
        "fr": "Moment {timing!r} : immediate ou end_of_term est attendu.",
    },
    "empty_cart": {
        "en": "A checkout needs at least one change.",
        "fr": "Une commande doit contenir au moins une modification.",
    },
    "duplicate_item": {
        "en": "A cart may change each subscription once; subscription {subscription} is "
        "in it already.",
        "fr": "Un panier ne modifie chaque abonnement qu'une fois ; l'abonnement "
        "{subscription} y est déjà.",
    },
    "mixed_accounts": {
        "en": "A cart belongs to one account.",
        "fr": "Un panier appartient à un seul compte.",
    },
    "invoice_not_open": {
        "en": "Invoice {invoice} is {status}: there is nothing to pay.",
        "fr": "La facture {invoice} est {status} : il n'y a rien à payer.",
    },
    "unusable_payment_token": {
        "en": "token: {why}.",
        "fr": "token : {why}.",
    },
    "cart_closed": {
        "en": "Cart {cart} was checked out already; start a new cart.",
        "fr": "Le panier {cart} a déjà été commandé ; créez un nouveau panier.",
    },
    "id_not_allowed": {
        "en": "Customers cannot choose a subscription id; leave it out.",
        "fr": "Un client ne peut pas choisir l'identifiant d'un abonnement ; omettez-le.",
    },
    "unknown_billing_time": {
        "en": "Billing time {billing_time!r} is not one of anniversary, calendar.",
        "fr": "Le calage {billing_time!r} n'est ni anniversary ni calendar.",
    },
    "billing_day_not_calendar": {
        "en": "Billing day {billing_day} does not go with billing time calendar: calendar "
        "periods start on the 1st; bill on another day with billing time anniversary.",
        "fr": "Le jour de facturation {billing_day} ne va pas avec le calage calendar : les "
        "périodes civiles commencent le 1er ; pour facturer un autre jour, choisissez "
        "anniversary.",
    },
    "term_not_object": {
        "en": "{value} is not a term: a term is an object with period (one of {choices}) "
        "and auto_renew (true or false).",
        "fr": "{value} n'est pas un terme : un terme est un objet avec period (parmi "
        "{choices}) et auto_renew (true ou false).",
    },
    "term_period_invalid": {
        "en": "{value} is not a term's length: a term is a commitment that ends or renews, "
        "so it lasts one of {choices}.",
        "fr": "{value} n'est pas une durée de terme : un terme est un engagement qui prend fin "
        "ou se renouvelle, il dure donc l'une de ces périodes : {choices}.",
    },
    "term_shorter_than_period": {
        "en": "Term {term!r} is shorter than the billing period of plan {plan} ({period!r}): "
        "a term commits to whole billing periods, so it lasts at least one.",
        "fr": "Le terme {term!r} est plus court que la période de facturation du plan {plan} "
        "({period!r}) : un terme engage sur des périodes entières, il en dure au moins une.",
    },
    "term_auto_renew_invalid": {
        "en": "{value} is not true or false: auto_renew says whether the term renews at its "
        "end (true) or the subscription expires then (false).",
        "fr": "{value} n'est ni true ni false : auto_renew dit si le terme se renouvelle à son "
        "échéance (true) ou si l'abonnement prend fin alors (false).",
    },
    "duplicate_id": {
        "en": "{noun} {id} exists already.",
        "fr": "{noun} {id} existe déjà.",
    },
    "idempotency_key_reused": {
        "en": "Idempotency-Key {key!r} was already used for a different request; use a new "
        "key for a new request.",
        "fr": "La clé Idempotency-Key {key!r} a déjà servi pour une autre requête ; utilisez "
        "une nouvelle clé.",
    },
    "naive_instant": {
        "en": "The instant of a service call must have a time zone.",
        "fr": "L'instant d'un appel doit avoir un fuseau horaire.",
    },
    "key_length": {
        "en": "An Idempotency-Key has 1 to 200 characters.",
        "fr": "Une clé Idempotency-Key a de 1 à 200 caractères.",
    },
    "invalid_decision": {
        "en": "Decision {decision!r}: expected approve, fulfil or reject.",
        "fr": "Décision {decision!r} : approve, fulfil ou reject est attendu.",
    },
    "wrong_decision": {
        "en": "Request {request} is a {reason} request: it cannot be {decision}ed.",
        "fr": "La demande {request} est de type {reason} : l'action {decision} ne s'y "
        "applique pas.",
    },
    "invalid_role": {
        "en": "Role {role!r}: expected owner, billing_contact or member.",
        "fr": "Rôle {role!r} : owner, billing_contact ou member est attendu.",
    },
    "invalid_value": {
        "en": "{field}: {value!r} is not valid: {why}.",
        "fr": "{field} : {value!r} n'est pas valide : {why}.",
    },
    "last_owner": {
        "en": "Account {account} needs an owner: user {user} is its last one.",
        "fr": "Le compte {account} doit garder un titulaire : l'utilisateur {user} est le dernier.",
    },
    "unauthenticated": {
        "en": "Authentication required: send 'Authorization: Bearer <token>'.",
        "fr": "Authentification requise : envoyez 'Authorization: Bearer <jeton>'.",
    },
    "invalid_token": {
        "en": "The token is not valid.",
        "fr": "Le jeton n'est pas valide.",
    },
    "token_expired": {
        "en": "The token expired on {at}; ask for a new one.",
        "fr": "Le jeton a expiré le {at} ; demandez-en un nouveau.",
    },
    "invalid_login": {
        "en": "Unknown e-mail address or wrong password.",
        "fr": "Adresse e-mail inconnue ou mot de passe erroné.",
    },
    "token_revoked": {
        "en": "The token was revoked.",
        "fr": "Le jeton a été révoqué.",
    },
    "insufficient_scope": {
        "en": "This token lacks the {scope!r} scope.",
        "fr": "Ce jeton n'a pas la portée {scope!r}.",
    },
    "validation_failed": {
        "en": "{field}: {reason}",
        "fr": "{field} : {reason}",
    },
    "unreadable_body": {
        "en": "The request body could not be read: send JSON with Content-Type application/json.",
        "fr": "Le corps de la requête est illisible : envoyez du JSON avec Content-Type "
        "application/json.",
    },
    "method_not_allowed": {
        "en": "Method {method} is not allowed here.",
        "fr": "La méthode {method} n'est pas permise ici.",
    },
    "internal_error": {
        "en": "Something went wrong on our side; nothing was changed. Reference: {reference}.",
        "fr": "Une erreur s'est produite de notre côté ; rien n'a été modifié. "
        "Référence : {reference}.",
    },
}


def render(key: str, locale: str, params: Mapping[str, object]) -> str:
    """The message ``key`` in ``locale`` (English when unknown); nouns and actions named by
    a ``kind``, ``role`` or ``action`` parameter are translated too."""
    language = lang(locale)
    templates = MESSAGES.get(key)
    if templates is None:
        return key
    values = dict(params)
    if "kind" in values:
        values["noun"] = NOUNS[language].get(str(values["kind"]), values["kind"])
    if isinstance(values.get("at"), str):
        with contextlib.suppress(ValueError):
            values["at"] = when(datetime.fromisoformat(values["at"]), language)
    if "role" in values:
        values["role_name"] = ROLES[language].get(str(values["role"]), values["role"])
    if "action" in values:
        values["action"] = ACTIONS[language].get(str(values["action"]), values["action"])
    return templates.get(language, templates["en"]).format(**values)
