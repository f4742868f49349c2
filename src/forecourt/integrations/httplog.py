"""Keep provider secrets out of httpx's request log lines.

httpx logs every request URL at INFO; WeChat puts the app secret, login codes and access
tokens in the query string. This filter drops query strings from those lines.
"""

from __future__ import annotations

import logging

import httpx


class _DropQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                a.copy_with(query=None) if isinstance(a, httpx.URL) and a.query else a
                for a in record.args
            )
        return True


_FILTER = _DropQuery()


def redact_query_strings() -> None:
    """Install the filter on the httpx logger (idempotent)."""
    logger = logging.getLogger("httpx")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
