"""The product page shows what waits for the next invoice and use billed in arrears."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prorata.adapters.tenants import add_membership, add_user
from prorata.entrypoints.setup import DEMO_PASSWORD
from prorata.services import subscriptions
from prorata.services.backoffice import set_password
from prorata.services.subscriptions import ChangeInput
from tests.portal.conftest import DEMO_NOW
from tests.store.test_subscription_waiting import stripe_tenant


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_product_page_lists_the_lines_left_for_the_next_invoice(portal, language):
    robot, accounts = stripe_tenant(portal.engine)
    with portal.engine.begin() as connection:
        user = add_user(connection, robot.tenant_id, "owner@waiting.example")
        add_membership(connection, user, accounts["acme"], "owner")
        set_password(connection, user, DEMO_PASSWORD, at=DEMO_NOW)
    start = DEMO_NOW.replace(day=1, hour=0)  # 1 November: a 30-day period
    for sub, plan in (("w1", "basic"), ("w2", "metered")):
        subscriptions.subscribe(
            portal.engine, robot, subscription=sub, account="acme", plan=plan, at=start
        )
    upgrade = start + timedelta(days=15)  # 15 of 30 days left
    subscriptions.checkout(portal.engine, robot, [ChangeInput("w1", plan="pro")], at=upgrade)

    client = portal.login("owner@waiting.example", language)
    page = client.get("/portal/products/w1").text
    title = {"fr": "Sur votre prochaine facture", "en": "On your next invoice"}[language]
    assert title in page
    assert 'data-pending-line="-15.50"' in page and 'data-pending-line="31.00"' in page
    assert "data-in-arrears-since" not in page
    metered = client.get("/portal/products/w2").text
    assert title not in metered and "data-pending-line" not in metered
    since = {"fr": "Usage facturé en fin de période", "en": "Use billed at the end of the period"}
    assert since[language] in metered and "data-in-arrears-since" in metered
