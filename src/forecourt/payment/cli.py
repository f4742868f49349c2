"""Payment commands of the `forecourt` tool: serial numbers, reconciliation, sandboxes."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

import typer
from rich.console import Console

from forecourt.config import get_settings

serial_app = typer.Typer(help="Transaction serial numbers (R19).", no_args_is_help=True)
console = Console(stderr=True)


def _serial_key() -> bytes:
    from forecourt.kit import secrets
    from forecourt.payment.setup import serial_key

    return serial_key(secrets.load(get_settings()).data_key)


@serial_app.command("verify")
def serial_verify(
    serial: str,
    device: Annotated[str | None, typer.Option(help="expected device fingerprint")] = None,
) -> None:
    """Check a serial number offline (no database): its time, device digest and check code."""
    from forecourt.kit import serials

    result = serials.verify(_serial_key(), serial.strip().upper(), device=device)
    if not result.valid:
        console.print(f"[red]invalid[/]: {result.reason}")
        raise typer.Exit(1)
    assert result.issued_at is not None
    typer.echo(f"valid: issued {result.issued_at.isoformat()} by device {result.device}")


@serial_app.command("new")
def serial_new(device: Annotated[str, typer.Option(help="device fingerprint")] = "cli") -> None:
    """Issue a serial number (for testing terminals)."""
    from forecourt.kit import serials

    typer.echo(serials.new_serial(_serial_key(), device=device))


def reconcile(
    provider: Annotated[str, typer.Option(help="wechatpay | alipay | unionpay")],
    bill_date: Annotated[
        str, typer.Option("--date", help="business day YYYY-MM-DD (Asia/Shanghai)")
    ],
) -> None:
    """Download a provider's statement for a day and match it against our payments."""
    from forecourt.payment import reconcile as reconciliation
    from forecourt.runtime import build

    try:
        day = date.fromisoformat(bill_date)
    except ValueError:
        console.print("[red]--date must be YYYY-MM-DD[/]")
        raise typer.Exit(2) from None

    async def run() -> int:
        runtime = build(get_settings())
        try:
            async with runtime.db.unit_of_work() as session:
                result = await reconciliation.run(
                    session, provider=provider, bill_date=day, gateways=runtime.gateways
                )
        finally:
            await runtime.stop()
        console.print(
            f"{result.provider} {result.bill_date}: {result.status}, "
            f"{result.matched}/{result.bill_rows} statement lines matched, "
            f"statement {result.bill_total_fen} fen, ours {result.our_total_fen} fen"
        )
        for item in result.items:
            console.print(
                f"  {item['problem']:<16} {item['kind']:<8} {item['number']} "
                f"statement={item['bill_fen']} ours={item['our_fen']}"
            )
        return 0 if not result.items else 1

    raise typer.Exit(asyncio.run(run()))


def sandbox(
    provider: Annotated[str, typer.Argument(help="wechatpay | alipay | unionpay")],
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8900,
) -> None:
    """Run one provider's sandbox as a standalone server (prints its test-only keys)."""
    import uvicorn

    factories = {
        "wechatpay": "forecourt.integrations.wechatpay.sandbox:create_app",
        "alipay": "forecourt.integrations.alipay.sandbox:create_app",
        "unionpay": "forecourt.integrations.unionpay.sandbox:create_app",
    }
    if provider not in factories:
        console.print(f"[red]unknown provider {provider}; one of {', '.join(factories)}[/]")
        raise typer.Exit(2)
    uvicorn.run(factories[provider], factory=True, host=host, port=port, log_config=None)
