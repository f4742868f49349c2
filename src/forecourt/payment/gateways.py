"""The payment providers of this process, chosen by settings (sandboxes when unset)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from forecourt.errors import FieldError, Unprocessable
from forecourt.payment.providers import PaymentProvider, PaymentSandbox, ProviderName


class UnknownProvider(Unprocessable):
    """The provider named is not one we accept."""

    code, title = "unknown_provider", "Unknown payment provider"


@dataclass
class Gateways:
    """Providers by name, with their in-process sandboxes (if any)."""

    providers: dict[ProviderName, PaymentProvider]
    sandboxes: dict[ProviderName, PaymentSandbox] = field(default_factory=dict)

    def get(self, name: str) -> PaymentProvider:
        """The provider called `name`; 422 unknown_provider otherwise."""
        try:
            return self.providers[ProviderName(name)]
        except (ValueError, KeyError):
            raise UnknownProvider(
                f"unknown payment provider {name!r}",
                errors=[FieldError("provider", f"must be one of {', '.join(self.names())}")],
            ) from None

    def names(self) -> list[str]:
        """Accepted provider names, the wallet included."""
        return [p.value for p in self.providers] + [ProviderName.WALLET.value]

    def route_notifications(self, transport: httpx.AsyncBaseTransport) -> None:
        """Deliver every in-process sandbox's callbacks through `transport` (our own app)."""
        for sandbox in self.sandboxes.values():
            sandbox.deliver_transport = transport  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Stop sandbox deliveries and close the wire clients."""
        for sandbox in self.sandboxes.values():
            close = getattr(sandbox, "aclose", None)
            if close is not None:
                await close()
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()


_active: Callable[[], Gateways] | None = None


def install(factory: Callable[[], Gateways]) -> None:
    """Where handlers and jobs of this process get the providers from."""
    global _active
    _active = factory


def active() -> Gateways:
    """The providers of this process."""
    if _active is None:
        raise RuntimeError("no payment gateways in this process: build the Runtime first")
    return _active()
