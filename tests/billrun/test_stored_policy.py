"""A tenant whose catalog version was stored before policies had their ``payment`` and
``dunning`` keys must still load: the bill run (like every service) reads the tenant's
newest catalog version, and a tenant it cannot read has every subscription fail."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from prorata.adapters import schema as t
from prorata.adapters import store
from prorata.adapters.store import load_config
from prorata.core.payments import Dunning, PaymentChange
from tests.billrun import world

NEW_KEYS = {"payment", "dunning"}


def test_a_policy_stored_before_the_payment_keys_still_loads(engine, monkeypatch):
    tenant = world.new_tenant(engine, world.plan(1, 1))
    versions = t.catalog_versions.c
    with engine.begin() as connection:
        stored = connection.execute(
            select(versions.policy).where(versions.tenant_id == tenant)
        ).scalar_one()
        older = {k: v for k, v in json.loads(stored).items() if k not in NEW_KEYS}
        # its merged source had none of them either
        source = older["source"]
        for key in NEW_KEYS:
            source.pop(key, None)
        connection.execute(
            update(t.catalog_versions)
            .where(versions.tenant_id == tenant)
            .values(policy=json.dumps(older, separators=(",", ":"), ensure_ascii=False))
        )
    monkeypatch.setattr(store, "_VERSIONS", {})  # as in a new process: nothing decoded yet
    with engine.connect() as connection:
        policy = load_config(connection, tenant).policy
    assert policy.payment == PaymentChange() and policy.dunning == Dunning()
    # and further overrides still merge onto it (a plan's or a change's)
    changed = policy.with_overrides({"dunning": {"final": "cancel"}})
    assert changed.dunning == Dunning(final="cancel") and changed.payment == PaymentChange()
