"""The protocol every e-invoice provider adapter implements, its data types, and the registry.

Adapters live in `integrations/<vendor>/provider.py`. Issuance is asynchronous: `issue`
returns the provider's serial at once; the result comes by callback (a hint we confirm with
`query`) or by `query` alone. Amounts are integer fen, volumes millilitres.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from forecourt.config import Settings

IssueState = Literal["issuing", "issued", "failed"]


class InvoiceProviderError(Exception):
    """The provider refused a call or could not be reached (`retryable` for the latter)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class InvalidCallback(Exception):
    """A callback body we cannot read."""


@dataclass(frozen=True, slots=True)
class IssueLine:
    """One refined-oil line (negative amounts and volume on a red invoice)."""

    goods_name: str  # *汽油*92号车用汽油
    tax_code: str
    unit: str
    volume_ml: int
    unit_price: str  # tax-inclusive yuan per unit, up to 8 decimals
    amount_fen: int
    net_fen: int
    tax_fen: int
    rate: str = "0.13"


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """Ask the provider to issue one invoice; `order_no` makes the request idempotent."""

    order_no: str
    kind: Literal["blue", "red"]
    seller_tax_id: str
    seller_name: str
    seller_address: str
    buyer_kind: Literal["company", "personal"]
    buyer_name: str
    buyer_tax_id: str | None
    lines: tuple[IssueLine, ...]
    issued_at: datetime
    clerk: str
    callback_url: str | None
    original_number: str | None = None  # red: the blue invoice's number
    red_reason: str | None = None  # red: 1 开票有误, 2 销货退回, 3 服务中止, 4 销售折让
    refined_oil: bool = True


@dataclass(frozen=True, slots=True)
class IssueResult:
    """What the provider says about one invoice."""

    serial: str
    order_no: str
    state: IssueState
    invoice_number: str | None = None
    issued_at: datetime | None = None
    qr_content: str | None = None
    net_fen: int | None = None
    tax_fen: int | None = None
    total_fen: int | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackNote:
    """Who a callback is about (its claims are confirmed by a query before use)."""

    serial: str
    order_no: str
    state_hint: str


@dataclass(frozen=True, slots=True)
class CallbackAck:
    """The answer the provider expects to a callback."""

    status_code: int
    body: bytes
    media_type: str = "application/json"


class InvoiceProvider(Protocol):
    """An e-invoice platform (Nuonuo, Baiwang, ...)."""

    name: str

    async def issue(self, request: IssueRequest) -> str:
        """Submit an invoice; the provider's serial (the same one again for a repeat)."""
        ...

    async def query(self, serial: str, *, seller_tax_id: str) -> IssueResult | None:
        """The current result of a submitted invoice; None when the provider does not know it."""
        ...

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackNote:
        """Read a result callback; InvalidCallback when it is not one."""
        ...

    def acknowledge(self, ok: bool) -> CallbackAck:
        """The answer to a callback (ok=False asks the provider to send it again)."""
        ...

    async def aclose(self) -> None:
        """Close the wire client."""
        ...


@dataclass
class Invoicing:
    """The invoice provider of this process, its sandbox (if any), settings and data key."""

    provider: InvoiceProvider
    settings: Settings
    data_key: bytes
    sandbox: Any = None  # the in-process sandbox, when no provider URL is configured

    def route_callbacks(self, transport: httpx.AsyncBaseTransport) -> None:
        """Deliver the sandbox's callbacks through `transport` (our own app, in tests)."""
        if self.sandbox is not None:
            self.sandbox.deliver_transport = transport

    async def aclose(self) -> None:
        """Stop sandbox deliveries and close the wire client."""
        if self.sandbox is not None:
            await self.sandbox.aclose()
        await self.provider.aclose()


_active: Callable[[], Invoicing] | None = None


def install(factory: Callable[[], Invoicing]) -> None:
    """Where handlers and jobs of this process get the invoice provider from."""
    global _active
    _active = factory


def active() -> Invoicing:
    """The invoice provider of this process."""
    if _active is None:
        raise RuntimeError("no invoice provider in this process: build the Runtime first")
    return _active()
