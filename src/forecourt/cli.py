"""The `forecourt` command."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console

from forecourt import migrate
from forecourt.config import VAR_DIR, get_settings
from forecourt.payment import cli as payment_cli

app = typer.Typer(help="Forecourt: run, migrate and seed the platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
seed_app = typer.Typer(help="Load data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(seed_app, name="seed")
app.add_typer(payment_cli.serial_app, name="serial")
app.command("reconcile")(payment_cli.reconcile)
app.command("sandbox")(payment_cli.sandbox)
console = Console(stderr=True)


def _prepare_var() -> None:
    VAR_DIR.mkdir(exist_ok=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database up (default: to the newest revision)."""
    _prepare_var()
    migrate.upgrade(get_settings().database_url, revision)
    console.print(f"[green]database at {revision}[/]")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. -1 or base)."""
    migrate.downgrade(get_settings().database_url, revision)
    console.print(f"[yellow]database downgraded to {revision}[/]")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one."""
    from forecourt.db import make_engine

    async def read() -> str | None:
        engine = make_engine(get_settings().database_url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    current = asyncio.run(read())
    head = migrate.head_revision()
    state = "current" if current == head else "behind"
    typer.echo(f"{current or 'empty'} (head {head}, {state})")


@seed_app.command("demo")
def seed_demo() -> None:
    """Load the Kunming demo stations, prices, staff and a month of history (idempotent)."""
    from forecourt.seed.demo import run as run_demo

    _prepare_var()
    asyncio.run(run_demo(get_settings(), console=console))


@seed_app.command("bench")
def seed_bench(
    stations: Annotated[int, typer.Option(help="how many stations to generate")] = 110_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
) -> None:
    """Generate a China-wide station set for benchmarks."""
    from forecourt.seed.bench import run as run_bench

    _prepare_var()
    asyncio.run(run_bench(get_settings(), stations=stations, seed=seed, console=console))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the API (uvicorn with uvloop and httptools)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "forecourt.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
) -> None:
    """Migrate, seed the demo data and serve; prints the URLs to open."""
    os.environ.setdefault("FORECOURT_SHOW_SANDBOX_SMS_CODE", "true")
    os.environ.setdefault("FORECOURT_LOG_JSON", "false")
    os.environ.setdefault("FORECOURT_RUN_SIMULATOR", "true")  # pumps and speakers move
    get_settings.cache_clear()
    settings = get_settings()
    db_upgrade()
    seed_demo()
    base = f"http://{host or settings.host}:{port or settings.port}"
    console.rule("[bold]Forecourt demo")
    for label, url in (
        ("API docs", f"{base}/docs"),
        ("Nearby 95#", f"{base}/api/v1/stations/nearby?lat=25.04&lng=102.71&coord=gcj02&grade=95"),
        ("Readiness", f"{base}/readyz"),
        ("Metrics", f"{base}/metrics"),
    ):
        console.print(f"{label:<12} {url}", soft_wrap=True, highlight=False)
    console.print(
        "Staff accounts and passwords are listed above (kept in var/demo-credentials.json)."
    )
    console.rule()
    serve(host=host, port=port, workers=1)


@app.command()
def simulate(
    station: Annotated[
        list[str] | None, typer.Option("--station", help="station code (repeatable)")
    ] = None,
    all_demo: Annotated[
        bool, typer.Option("--all-demo", help="every station that has nozzles (up to 200)")
    ] = False,
    mqtt_url: Annotated[
        str | None, typer.Option(help="broker, e.g. mqtt://127.0.0.1:1883 (default: settings)")
    ] = None,
    speed: Annotated[float, typer.Option(min=0.01, help="time factor for the physics")] = 1.0,
    traffic: Annotated[bool, typer.Option(help="random cars fuelling (post-pay)")] = True,
    auto_authorise: Annotated[
        bool, typer.Option(help="pumps authorise a lifted nozzle themselves (post-pay)")
    ] = True,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="inject: link-drop | power-loss | stuck-nozzle (repeatable)"),
    ] = None,
    fault_after: Annotated[float, typer.Option(help="seconds before the first fault")] = 30.0,
    fault_every: Annotated[
        float | None, typer.Option(help="repeat the faults every N seconds")
    ] = None,
    fault_duration: Annotated[float, typer.Option(help="how long a fault lasts (s)")] = 15.0,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
) -> None:
    """Run simulated station gateways and speakers against an MQTT broker until Ctrl-C."""
    from forecourt.pump.simulator.cli import SimulateArgs, run_simulate

    args = SimulateArgs(
        stations=tuple(station or ()),
        all_demo=all_demo,
        mqtt_url=mqtt_url,
        speed=speed,
        traffic=traffic,
        auto_authorise=auto_authorise,
        faults=tuple(fault or ()),
        fault_after=fault_after,
        fault_every=fault_every,
        fault_duration=fault_duration,
        seed=seed,
    )
    try:
        asyncio.run(run_simulate(get_settings(), args, console=console))
    except KeyboardInterrupt:
        console.print("[yellow]simulator stopped[/]")
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="tasks run at once")] = 50,
    metrics_port: Annotated[int | None, typer.Option(help="serve /metrics on this port")] = None,
) -> None:
    """Run background tasks from the broker (FORECOURT_TASK_BROKER_URL) and the dispatcher."""
    from forecourt.worker.main import run_worker

    asyncio.run(run_worker(get_settings(), concurrency=concurrency, metrics_port=metrics_port))


@app.command()
def scheduler() -> None:
    """Send scheduled jobs to the broker on their cron (run exactly one)."""
    from forecourt.worker.main import run_scheduler

    asyncio.run(run_scheduler(get_settings()))


def main() -> None:
    """Entry point of the `forecourt` script."""
    app()
