"""Serve the in-process provider sandboxes under /sandbox/<provider>/ (demo cashier pages).

Only sandboxes that exist are reachable: with a real provider configured there is none, and
every path answers 404.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from forecourt.payment.providers import ProviderName

PREFIX = "/sandbox"


class SandboxMount:
    """An ASGI app that forwards /sandbox/<provider>/... to that provider's sandbox app."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        root: str = scope.get("root_path", "")  # the mount point, /sandbox
        name = scope["path"][len(root) :].lstrip("/").partition("/")[0]
        runtime = scope["app"].state.runtime
        try:
            sandbox = runtime.gateways.sandboxes.get(ProviderName(name))
        except ValueError:
            sandbox = None
        if sandbox is None:
            await PlainTextResponse("no such sandbox", status_code=404)(scope, receive, send)
            return
        child = dict(scope)
        child["root_path"] = f"{root}/{name}"
        await sandbox.app(child, receive, send)
