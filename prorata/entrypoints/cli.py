"""The ``prorata`` command: simulate scenario files, serve the API and portal."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from prorata.core.documents import CreditNote
from prorata.scenario.loader import ScenarioError, load_scenario
from prorata.scenario.output import to_json
from prorata.scenario.simulator import Book, simulate

app = typer.Typer(add_completion=False, help="prorata: subscription changes, to the cent.")


@app.command("simulate")
def simulate_command(
    file: Path = typer.Argument(..., help="A scenario file (see docs/scenarios.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print the spec's JSON document."),
    explain: bool = typer.Option(False, "--explain", help="Explain every prorated line."),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Run on this database (SQLAlchemy URL, e.g. sqlite:///var/sim.db or "
        "postgresql://user@host/db) as a new tenant, one transaction per event.",
    ),
) -> None:
    """Run FILE on a simulated clock and print the documents it produces."""
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if store is None:
        book = simulate(scenario)
    else:
        from prorata.scenario.on_store import simulate_url

        book = simulate_url(scenario, store)
    if as_json:
        typer.echo(to_json(scenario, book))
    else:
        _print_tables(book, Console())
    if explain:
        _print_explanations(book, Console())


def _print_tables(book: Book, console: Console) -> None:
    for doc in book.documents:
        kind = "Credit note" if isinstance(doc, CreditNote) else "Invoice"
        title = f"{kind} {doc.number} · {doc.issued_at.date().isoformat()} · {doc.account}"
        if isinstance(doc, CreditNote) and doc.refers_to:
            title += f" · refers to {doc.refers_to}"
        table = Table(title=title, title_justify="left")
        for column in ("description", "period", "qty", "amount"):
            table.add_column(column, justify="right" if column in ("qty", "amount") else "left")
        for line in doc.lines:
            period = ""
            if line.start is not None:
                period = f"{line.start.date().isoformat()} → {line.end.date().isoformat()}"
            table.add_row(line.description, period, str(line.quantity), str(line.amount))
        table.add_section()
        table.add_row("total", "", "", f"{doc.total} {doc.currency}")
        if not isinstance(doc, CreditNote):
            if doc.credit_applied:
                table.add_row("credit applied", "", "", str(-doc.credit_applied))
            if doc.credit_added:
                table.add_row("credit added", "", "", str(doc.credit_added))
            table.add_row("amount due", "", "", f"{doc.amount_due} ({doc.status})")
        console.print(table)
    for rejection in book.rejected:
        console.print(
            f"[red]refused[/red] event {rejection.event}: {rejection.code}: {rejection.message}"
        )


def _print_explanations(book: Book, console: Console) -> None:
    for number, line in book.explanations:
        if line.explanation:
            console.print(f"{number} · {line.description}: {line.amount}\n    {line.explanation}")


@app.command("setup")
def setup_command(
    database: str | None = typer.Option(
        None, "--database", help="SQLAlchemy URL (default: PRORATA_DATABASE_URL or var/)."
    ),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Load the demo tenants."),
) -> None:
    """Migrate the database to the newest schema and load the demo tenants once."""
    from prorata.adapters.database import database_url
    from prorata.entrypoints.setup import prepare

    loaded = prepare(database, demo=demo)
    where = database_url(database)
    typer.echo(f"database ready: {where}" + (f" (demo: {', '.join(loaded)})" if loaded else ""))


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Serve the API and portal."""
    import uvicorn

    uvicorn.run("prorata.web.app:app", host=host, port=port)


def main() -> None:
    app()
