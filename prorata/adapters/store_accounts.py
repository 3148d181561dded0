"""Accounts as billing reads them: the row's columns billing needs
(:data:`ACCOUNT_COLUMNS`), the core value made of a row (:func:`account_from_row`) and a
tenant's accounts by key within one transaction (:class:`AccountDirectory`).

Invariants: reads are confined to the directory's tenant; an account is read once per
transaction and kept; the only write is the payment method (what billing changes on an
account).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from prorata.adapters import schema as t
from prorata.core.model import Account

_P = bindparam
# what an account is to billing (account_from_row), with its row id and tenant
ACCOUNT_COLUMNS = tuple(
    t.accounts.c[name]
    for name in (
        "id",
        "tenant_id",
        "key",
        "locale",
        "auto_pay",
        "payment_method",
        "tax_rate",
        "vat_id",
        "payment_token",
        "pending_lines",
    )
)
_ACCOUNT = select(*ACCOUNT_COLUMNS).where(
    t.accounts.c.tenant_id == _P("tenant"), t.accounts.c.key == _P("key")
)


def account_from_row(row: Any) -> Account:
    return Account(
        id=row.key,
        locale=row.locale,
        auto_pay=row.auto_pay,
        payment_method=row.payment_method,
        tax_rate=Decimal(row.tax_rate),
        vat_id=row.vat_id,
        payment_token=row.payment_token,
    )


class AccountDirectory(Mapping[str, Account]):
    """The tenant's accounts by key, read on first use within one transaction."""

    def __init__(self, connection: Connection, tenant_id: int) -> None:
        self._connection = connection
        self._tenant_id = tenant_id
        self._cache: dict[str, Account] = {}
        self.ids: dict[str, int] = {}
        self.pending: dict[str, str | None] = {}  # codec text of the lines waiting, as read

    def __getitem__(self, key: str) -> Account:
        if key not in self._cache:
            row = self._connection.execute(
                _ACCOUNT, {"tenant": self._tenant_id, "key": key}
            ).one_or_none()
            if row is None:
                raise KeyError(key)
            self.remember(row)
        return self._cache[key]

    def remember(self, row: Any) -> None:
        """Keep the account of ``row`` (a row of ``accounts``, read by the caller)."""
        self._cache[row.key] = account_from_row(row)
        self.ids[row.key] = row.id
        self.pending[row.key] = row.pending_lines

    def holds_pending(self, key: str) -> bool:
        """Whether lines waited on account ``key`` when its row was read."""
        self[key]
        return self.pending[key] is not None

    def __setitem__(self, key: str, account: Account) -> None:
        """Keep ``account``'s payment method (the one thing billing changes on an account)."""
        self._connection.execute(
            update(t.accounts)
            .where(t.accounts.c.id == self.id_of(key))
            .values(payment_method=account.payment_method, payment_token=account.payment_token)
        )
        self._cache[key] = account

    def id_of(self, key: str) -> int:
        self[key]
        return self.ids[key]

    def __iter__(self) -> Iterator[str]:
        rows = self._connection.execute(
            select(t.accounts.c.key)
            .where(t.accounts.c.tenant_id == self._tenant_id)
            .order_by(t.accounts.c.id)
        )
        return iter([row.key for row in rows])

    def __len__(self) -> int:
        return self._connection.execute(
            select(func.count()).where(t.accounts.c.tenant_id == self._tenant_id)
        ).scalar_one()
