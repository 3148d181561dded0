"""The caller's language from ``Accept-Language`` (RFC 9110 §12.5.4): fr or en.

Ranges are read with their q-values, highest first (ties keep header order); the first
range whose primary language is one prorata speaks wins; anything else reads English.
"""

from __future__ import annotations

from starlette.requests import Request

SUPPORTED = ("en", "fr")
DEFAULT = "en"


def negotiate(header: str | None) -> str:
    if not header:
        return DEFAULT
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranges.append((-quality, position, tag))
    for _, _, tag in sorted(ranges):
        primary = tag.split("-")[0]
        if primary in SUPPORTED:
            return primary
        if primary == "*":
            return DEFAULT
    return DEFAULT


def request_locale(request: Request) -> str:
    """The negotiated language, computed once per request."""
    cached = getattr(request.state, "locale", None)
    if cached is None:
        cached = negotiate(request.headers.get("accept-language"))
        request.state.locale = cached
    return cached
