"""Who is calling, and what they may do: checked in the services, not only on the web.

Rules:
- everything a principal touches belongs to its tenant; another tenant's keys do not
  resolve (:class:`NotFound`), so ids cannot be probed across tenants;
- a customer sees the accounts they are a member of, and nothing else (:class:`NotFound`);
- a customer may change an account's subscriptions as its ``owner`` or
  ``billing_contact``; a ``member`` may look but not change (:class:`Forbidden`);
- tenant staff (``support``, ``account_manager``) and the tenant's API tokens may act on
  any account of the tenant; staff actions are audited as on behalf of the account;
- approving, rejecting and fulfilling requests is for staff and tokens only.
The policy may narrow further (``authorized_roles``); the core checks that with the
:class:`~prorata.core.model.Actor` built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from prorata.adapters import schema as t
from prorata.core.model import Actor
from prorata.services.errors import Forbidden, NotFound

CHANGE_ROLES = frozenset({"owner", "billing_contact"})


@dataclass(frozen=True)
class Principal:
    """The caller. ``kind``: ``user`` (a person), ``token`` (the tenant's API) or ``system``
    (the bill run, the simulator). ``memberships`` maps account keys to customer roles."""

    tenant_id: int
    kind: str = "user"
    user_id: int | None = None
    staff_role: str | None = None
    memberships: Mapping[str, str] = field(default_factory=dict)
    locale: str | None = None  # the language the caller reads messages in (Accept-Language)
    scopes: frozenset[str] | None = None  # an API token's scopes; None: not a token

    @property
    def is_staff(self) -> bool:
        return self.kind in ("token", "system") or self.staff_role is not None

    @property
    def role(self) -> str:
        if self.staff_role:
            return self.staff_role
        return "support" if self.kind in ("token", "system") else "member"

    @property
    def identity(self) -> str:
        """A stable name for idempotency fingerprints and the audit log."""
        return f"{self.kind}:{self.tenant_id}:{self.user_id or ''}"


def load_principal(connection: Connection, tenant_id: int, user_id: int) -> Principal:
    """The principal of user ``user_id``; :class:`NotFound` if not a user of the tenant."""
    user = connection.execute(
        select(t.users.c.id, t.users.c.staff_role).where(
            t.users.c.id == user_id, t.users.c.tenant_id == tenant_id
        )
    ).one_or_none()
    if user is None:
        raise NotFound(kind="user", id=user_id)
    rows = connection.execute(
        select(t.accounts.c.key, t.memberships.c.role)
        .join(t.memberships, t.memberships.c.account_id == t.accounts.c.id)
        .where(t.memberships.c.user_id == user_id, t.accounts.c.tenant_id == tenant_id)
    )
    return Principal(
        tenant_id,
        "user",
        user_id,
        user.staff_role,
        {row.key: row.role for row in rows},
    )


def can_see(principal: Principal, account: str) -> bool:
    return principal.is_staff or account in principal.memberships


def ensure_visible(principal: Principal, account: str, kind: str, key: object) -> None:
    """:class:`NotFound` for ``kind`` ``key`` unless ``account`` is visible to the caller."""
    if not can_see(principal, account):
        raise NotFound(kind=kind, id=key)


def actor_for_change(principal: Principal, account: str, kind: str, key: object) -> Actor:
    """The actor the core checks against the policy; raises when the caller may not act."""
    ensure_visible(principal, account, kind, key)
    if principal.is_staff:
        return Actor(None, principal.role)
    role = principal.memberships[account]
    if role not in CHANGE_ROLES:
        raise Forbidden("role_cannot_change", role=role, account=account)
    return Actor(account, role)


def ensure_staff(principal: Principal, action: str) -> None:
    """``action`` names what is refused (a key of :data:`prorata.services.messages.ACTIONS`)."""
    if not principal.is_staff:
        raise Forbidden("staff_only", action=action)


def on_behalf_of(principal: Principal, account: str) -> str | None:
    """The account a staff action is taken for (audited), or None for the customer's own."""
    return account if principal.is_staff else None
