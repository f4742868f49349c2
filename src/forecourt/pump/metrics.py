"""Prometheus metrics of the pump link: messages, refusals, commands, connection."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "forecourt_pump_messages_total",
    "Gateway messages handled by the server link, by topic kind and outcome "
    "(applied, duplicate, refused, ignored)",
    ["kind", "outcome"],
)
REFUSED = Counter(
    "forecourt_pump_refused_total",
    "Gateway messages refused as bad input, by reason code (per station: station_alerts)",
    ["code"],
)
COMMANDS = Counter(
    "forecourt_pump_commands_total",
    "Commands to gateways by type and event (created, published, acked_ok, rejected, timed_out)",
    ["type", "event"],
)
CONNECTED = Gauge("forecourt_pump_link_connected", "1 while the server link is connected")
RECONNECTS = Counter("forecourt_pump_link_reconnects_total", "Server link (re)connection attempts")
HANDLE_SECONDS = Histogram(
    "forecourt_pump_message_seconds",
    "Time to handle one gateway message (decode, unit of work, publishes after commit)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
