"""Preparing a database: migrations, and the demo tenants ``make run`` serves.

Each file in ``demo/`` becomes one tenant (slug = file name) whose events are replayed on
the store, then renewed up to today; each account gets three users (owner, billing contact,
member: ``owner@<account>.example`` …) and each tenant a support user
(``support@<slug>.example``) and an account manager (``manager@<slug>.example``). Every demo
user signs in to the portal (``/portal``) with the password :data:`DEMO_PASSWORD`. Loading is
skipped for tenants that exist already, so running it again changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select, update

from prorata.adapters import schema as t
from prorata.adapters.database import make_engine, migrate
from prorata.adapters.store import StoreBook, load_config
from prorata.adapters.tenants import add_membership, add_user
from prorata.scenario.loader import load_scenario
from prorata.scenario.on_store import billing_on, simulate_on_store
from prorata.services.backoffice import set_password
from prorata.services.credentials import SCOPES, issue_token

DEMO = Path(__file__).resolve().parents[2] / "demo"
CUSTOMER_USERS = (("owner", "owner"), ("billing", "billing_contact"), ("member", "member"))
STAFF_USERS = (("support", "support"), ("manager", "account_manager"))
DEMO_PASSWORD = "prorata-demo"  # every demo user's portal password (documented in the README)
# The names the portal shows for the demo accounts.
DEMO_ACCOUNT_NAMES = {
    "boulangerie": "Boulangerie du Coin",
    "helpdesk": "Helpdesk Partners Inc.",
    "agence": "Agence Horizon",
    "devshop": "Atelier Logiciel SARL",
    "studio": "Studio North LLC",
    "hotel": "Hôtel des Deux Rives",
}
# Who sells in each demo tenant, as its documents show it (fictional identities).
DEMO_SELLERS = {
    "kajoom-hosting": {
        "legal_name": "Kajoom Hébergement inc. (démo)",
        "address": "100 rue de la Démo\nMontréal QC H2X 1Y1",
        "country": "CA",
        "payment_terms_days": 0,
    },
    "gotoassist-seats": {
        "legal_name": "Remote Support Demo LLC",
        "address": "1 Demo Way\nBoston MA 02110",
        "country": "US",
        "payment_terms_days": 30,
    },
    "groupdocs-licence": {
        "legal_name": "Document APIs Demo Pty Ltd",
        "address": "1 Demo Street\nAustin TX 78701",
        "country": "US",
        "payment_terms_days": 0,
    },
    "chetspms-plans": {
        "legal_name": "Logiciels Hôteliers Démo SAS",
        "address": "5 quai de la Démo\n69002 Lyon",
        "country": "FR",
        "vat_id": "FR40123456824",
        "siren": "123456824",
        "payment_terms_days": 0,
    },
    "aircall-contract": {
        "legal_name": "Téléphonie Démo SAS",
        "address": "10 rue de l'Exemple\n75002 Paris",
        "country": "FR",
        "vat_id": "FR40123456824",
        "siren": "123456824",
        "payment_terms_days": 30,
    },
}


def _tenant(engine: Engine, slug: str) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            select(t.tenants.c.id).where(t.tenants.c.slug == slug)
        ).scalar_one_or_none()


def load_demo(engine: Engine, folder: Path = DEMO, now: datetime | None = None) -> dict[str, str]:
    """Load every demo scenario not loaded yet; returns the slugs loaded, each with an API
    token holding every scope (its only copy)."""
    now = now or datetime.now(UTC)
    loaded = {}
    for path in sorted(folder.glob("*.yaml")):
        slug = path.stem
        if _tenant(engine, slug) is not None:
            continue
        scenario = load_scenario(path)
        simulate_on_store(scenario, engine, slug=slug)
        tenant_id = _tenant(engine, slug)
        with engine.begin() as connection:
            book = StoreBook(connection, load_config(connection, tenant_id))
            billing_on(book).renew_due(now.astimezone(book.zone), inclusive=True)
            for account in scenario.accounts:
                account_id = book.accounts.id_of(account)
                for prefix, role in CUSTOMER_USERS:
                    user = add_user(
                        connection,
                        tenant_id,
                        f"{prefix}@{account}.example",
                        locale=scenario.accounts[account].locale,
                    )
                    add_membership(connection, user, account_id, role)
                    set_password(connection, user, DEMO_PASSWORD, at=now)
                if account in DEMO_ACCOUNT_NAMES:
                    connection.execute(
                        update(t.accounts)
                        .where(t.accounts.c.id == account_id)
                        .values(name=DEMO_ACCOUNT_NAMES[account])
                    )
            for prefix, role in STAFF_USERS:
                user = add_user(connection, tenant_id, f"{prefix}@{slug}.example", staff_role=role)
                set_password(connection, user, DEMO_PASSWORD, at=now)
            if slug in DEMO_SELLERS:
                connection.execute(
                    update(t.tenants).where(t.tenants.c.id == tenant_id).values(DEMO_SELLERS[slug])
                )
            loaded[slug] = issue_token(
                connection, tenant_id, name="demo", scopes=list(SCOPES), now=now
            )
    return loaded


def prepare(url: str | None = None, *, demo: bool = True) -> dict[str, str]:
    """Migrate the database at ``url`` (default: ``PRORATA_DATABASE_URL`` or the SQLite
    file under ``./var/``) and load the demo tenants."""
    engine = make_engine(url)
    try:
        migrate(engine)
        return load_demo(engine) if demo else {}
    finally:
        engine.dispose()
