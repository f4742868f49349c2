"""Prometheus metrics for the outbox, its handlers and scheduled jobs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BACKLOG = Gauge("forecourt_outbox_backlog", "Outbox events not yet handed to the task queue")
FAILING = Gauge(
    "forecourt_outbox_failing", "Outbox events waiting for a retry after at least one failure"
)
OLDEST_AGE = Gauge(
    "forecourt_outbox_oldest_pending_seconds", "Age of the oldest undispatched outbox event"
)
DISPATCHED = Counter("forecourt_outbox_dispatched_total", "Outbox events handed to the task queue")
DISPATCH_FAILED = Counter(
    "forecourt_outbox_dispatch_failed_total", "Outbox events the task queue refused (retried later)"
)
HANDLED = Counter(
    "forecourt_outbox_handler_runs_total",
    "Event handler runs by outcome (done, skipped = already applied or not wanted, failed)",
    ["handler", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "forecourt_outbox_handler_seconds",
    "Event handler run time",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIED = Counter(
    "forecourt_outbox_retried_total", "Outbox events put back for a retry after a handler failed"
)
PURGED = Counter("forecourt_outbox_purged_total", "Rows deleted by the purge job", ["table"])
JOB_RUNS = Counter(
    "forecourt_job_runs_total", "Scheduled job runs by outcome (done, failed)", ["job", "outcome"]
)
