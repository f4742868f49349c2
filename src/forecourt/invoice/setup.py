"""Build the invoice provider of a process from settings (a sandbox when unset)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forecourt.config import Settings
from forecourt.invoice import domain, providers
from forecourt.invoice.providers import Invoicing

if TYPE_CHECKING:
    from forecourt.runtime import Runtime


def build(settings: Settings, *, data_key: bytes) -> Invoicing:
    """Nuonuo at `nuonuo_api_base`, or its in-process sandbox; the goods table is checked."""
    from forecourt.integrations import nuonuo

    domain.goods_table(settings.invoice_goods)
    provider, sandbox = nuonuo.from_settings(settings)
    if sandbox is not None and settings.env == "prod":
        raise RuntimeError("nuonuo: configure the real provider in prod (no sandbox)")
    return Invoicing(provider=provider, settings=settings, data_key=data_key, sandbox=sandbox)


def install(runtime: Runtime) -> None:
    """Make the runtime's invoice provider (built on first use) that of this process."""
    providers.install(lambda: runtime.invoicing)
