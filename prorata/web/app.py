"""The HTTP entry point. Until the API and portal land, it serves a status page and previews
the seed scenarios through the same simulator the CLI uses."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from prorata import __version__

app = FastAPI(title="prorata", version=__version__)


@app.get("/", response_class=HTMLResponse)
def home() -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>prorata</title></head>"
        "<body><h1>prorata</h1><p>The subscription-change engine is running. "
        "The API and the customer portal are not served yet; use "
        "<code>prorata simulate FILE</code> meanwhile.</p>"
        "<p><a href='/healthz'>health</a></p></body></html>"
    )


@app.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}
