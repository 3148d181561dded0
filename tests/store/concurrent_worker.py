"""One checkout in a process of its own, for ``tests/store/test_concurrency.py``.

Started with the ``spawn`` context, so the child shares nothing with the test process but
the arguments: the database URL, the caller as plain ids, the change as a dict and the
instant. It makes its own engine, rebuilds the principal, waits at the barrier with the
other processes, checks out once and puts ``(index, outcome)`` on the queue, where the
outcome is :func:`describe` of what happened (plain, picklable data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prorata.adapters.database import make_engine
from prorata.services import subscriptions
from prorata.services.access import load_principal
from prorata.services.subscriptions import ChangeInput


def describe(result: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    """What one call did, comparable across threads and processes."""
    if error is None:
        return {"ok": True, "response": result}
    return {
        "ok": False,
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "code": getattr(error, "code", None),
        "details": getattr(error, "details", None),
        "message": str(error),
    }


def checkout_once(
    index: int,
    url: str,
    tenant_id: int,
    user_id: int,
    change: dict[str, Any],
    at: datetime,
    barrier,
    results,
) -> None:
    engine = None
    try:
        engine = make_engine(url, pool=False)
        with engine.connect() as connection:
            principal = load_principal(connection, tenant_id, user_id)
        item = ChangeInput(**change)
        barrier.wait()
    except BaseException as exc:  # a child that cannot start must still report
        results.put((index, describe(error=exc) | {"phase": "setup"}))
        if engine is not None:
            engine.dispose()
        return
    try:
        outcome = describe(subscriptions.checkout(engine, principal, [item], at=at))
    except BaseException as exc:
        outcome = describe(error=exc)
    finally:
        engine.dispose()
    results.put((index, outcome))
