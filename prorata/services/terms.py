"""A subscription's contract term as a subscribe asks for it (the API's ``term``, a
scenario's ``subscribe.term``): ``period``, the term's length, and ``auto_renew``.

Invariants:
- a term lasts a recurring period (``TERM_PERIODS``: every period but ``one_time``), as the
  scenario loader reads it (``prorata.scenario.events.term_spec``); ``auto_renew`` is a
  boolean, true when left out;
- a refusal names the value as the caller sent it (JSON, cut at ``SHOWN`` characters) and
  the periods a term may last, so its message says which value and why.
"""

from __future__ import annotations

import json
from typing import Any

from prorata.core.calendar import PeriodUnit
from prorata.core.model import TermSpec
from prorata.services.errors import InvalidRequest

TERM_PERIODS = tuple(unit.value for unit in PeriodUnit if unit.recurring)
SHOWN = 60


def shown(value: Any) -> str:
    """``value`` as its JSON text, cut short when long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def refusal_params(value: Any) -> dict[str, str]:
    """The parameters of a term's refusal (``term_*`` messages): the value and the choices."""
    return {"value": shown(value), "choices": ", ".join(TERM_PERIODS)}


def checked(term: TermSpec | None) -> TermSpec | None:
    """``term`` if a subscription may have it; refused (``term_period_invalid``) otherwise."""
    if term is not None and not term.period.recurring:
        raise InvalidRequest(code="term_period_invalid", **refusal_params(str(term.period)))
    if term is not None and not isinstance(term.auto_renew, bool):
        raise InvalidRequest(code="term_auto_renew_invalid", **refusal_params(term.auto_renew))
    return term


def body_of(term: TermSpec | None) -> dict[str, Any] | None:
    """``term`` as the request body keeps it (for idempotency: a replay must ask the same)."""
    return None if term is None else {"period": str(term.period), "auto_renew": term.auto_renew}
