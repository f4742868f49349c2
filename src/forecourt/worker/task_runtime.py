"""TaskRuntime: the broker, the outbox dispatcher, the scheduler and the worker loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, InMemoryBroker, TaskiqScheduler
from taskiq.api import run_scheduler_task
from taskiq.receiver import Receiver
from taskiq.schedule_sources import LabelScheduleSource

from forecourt.outbox import metrics, processor
from forecourt.outbox.dispatcher import Dispatcher
from forecourt.outbox.registry import Event, HandlerRegistry
from forecourt.outbox.registry import handlers as default_handlers
from forecourt.outbox.repository import Claimed
from forecourt.outbox.retry import RetryPolicy
from forecourt.worker import brokers
from forecourt.worker.discovery import discover
from forecourt.worker.jobs import CRON_TZ, Job, JobRegistry
from forecourt.worker.jobs import jobs as default_jobs

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.worker")

PROCESS_EVENT = "forecourt.outbox.process_event"
UNREACHABLE_PAUSE_MAX = timedelta(seconds=60)


class TaskRuntime:
    """Background work of one process; the same code on the in-process and the Redis broker."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        broker: AsyncBroker | None = None,
        handlers: HandlerRegistry | None = None,
        jobs: JobRegistry | None = None,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 100,
    ) -> None:
        if handlers is None or jobs is None:
            discover()
        self.runtime = runtime
        self.handlers = handlers if handlers is not None else default_handlers
        self.jobs = jobs if jobs is not None else default_jobs
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.batch_size = batch_size
        self.broker = broker or brokers.make_broker(runtime.settings.task_broker_url)
        self.process_event = self._register_process_event()
        self.job_tasks = {job.name: self._register_job(job) for job in self.jobs.all()}
        self._dispatcher: Dispatcher | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._started = False

    @property
    def in_process(self) -> bool:
        """True when tasks run in this process (no broker URL: the embedded default)."""
        return brokers.is_in_process(self.broker)

    @property
    def dispatcher(self) -> Dispatcher:
        """The outbox dispatcher of this process (made on first use)."""
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(
                self.runtime.db,
                self._kick,
                poll_seconds=self.runtime.settings.outbox_poll_seconds,
                batch_size=self.batch_size,
                lease=self.lease,
                policy=self.policy,
            )
        return self._dispatcher

    def notify(self) -> None:
        """Wake the dispatcher now (it also wakes by itself after commits that publish)."""
        if self._dispatcher is not None:
            self._dispatcher.notify()

    async def start(self, *, dispatcher: bool, scheduler: bool, worker: bool = False) -> None:
        """Connect the broker; run the dispatcher and the scheduler loops when asked.

        `worker=True` also opens the consuming side of the broker, for `run_worker`.
        """
        if worker:
            self.broker.is_worker_process = True
        if not self._started:
            await self.broker.startup()
            self._started = True
        if dispatcher:
            self.dispatcher.start()
        if scheduler:
            self._loops.append(asyncio.create_task(self.run_scheduler(), name="task-scheduler"))

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop the loops, let in-process tasks finish (up to `grace` s), close the broker."""
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
        self._loops.clear()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        if not self._started:
            return
        if self.in_process:
            try:
                await self.drain(grace=grace)
            except TimeoutError:
                log.warning("in-process tasks still running at shutdown; the outbox retries them")
        await self.broker.shutdown()
        self._started = False

    async def drain(self, *, grace: float = 10.0) -> None:
        """Wait until no in-process task is running (no-op on an outside broker)."""
        if not isinstance(self.broker, InMemoryBroker):
            return
        async with asyncio.timeout(grace):
            await self.broker.wait_all()

    async def run_job(self, name: str) -> None:
        """Send a scheduled job to the queue now."""
        await self.job_tasks[name].kiq()

    async def run_scheduler(self) -> None:
        """Send every job to the queue when its cron matches; runs until cancelled."""
        scheduler = TaskiqScheduler(self.broker, [LabelScheduleSource(self.broker)])
        await run_scheduler_task(scheduler, run_startup=False)

    async def run_worker(self, stop: asyncio.Event, *, concurrency: int = 50) -> None:
        """Run tasks from the broker until `stop` is set, then finish the running ones."""
        if self.in_process:
            raise RuntimeError("no task broker configured: set FORECOURT_TASK_BROKER_URL")
        if not self.broker.is_worker_process:
            raise RuntimeError("start(worker=True) before run_worker()")
        receiver = Receiver(
            self.broker,
            run_startup=False,
            max_async_tasks=concurrency,
            wait_tasks_timeout=30,
        )
        await receiver.listen(stop)

    async def trim_queue(self) -> int:
        """Drop acknowledged messages from the Redis stream (0 elsewhere)."""
        return await brokers.trim_acknowledged(self.broker)

    async def _kick(self, event: Claimed) -> None:
        claimed = {
            "topic": event.topic,
            "payload": event.payload,
            "created_at": event.created_at.isoformat(),
            "attempts": event.attempts,
        }
        await self.process_event.kiq(event.id, 0, claimed)

    def _register_process_event(self) -> AsyncTaskiqDecoratedTask[Any, Any]:
        async def process_event(
            event_id: int, round_: int = 0, claimed: dict[str, Any] | None = None
        ) -> dict[str, str]:
            """Run the event's handlers; `claimed` is the event as claimed (no re-read)."""
            known = _event(event_id, claimed) if claimed is not None and round_ == 0 else None
            try:
                outcomes = await processor.process_event(
                    self.runtime.db, self.handlers, self.policy, event_id, known
                )
            except Exception:
                # The database did not answer, so the event cannot be rescheduled there and the
                # queue has already acknowledged it: send it round again after a pause.
                pause = min(self.policy.delay(round_ + 1), UNREACHABLE_PAUSE_MAX)
                log.exception(
                    "outbox event could not be processed; sending it round again",
                    extra={"event_id": event_id, "round": round_ + 1},
                )
                await asyncio.sleep(pause.total_seconds())
                await self.process_event.kiq(event_id, round_ + 1)
                return {}
            return dict(outcomes)

        return self.broker.register_task(process_event, task_name=PROCESS_EVENT)

    def _register_job(self, job: Job) -> AsyncTaskiqDecoratedTask[Any, Any]:
        async def run() -> None:
            try:
                await job.fn(self.runtime)
            except Exception:
                metrics.JOB_RUNS.labels(job.name, "failed").inc()
                log.exception("scheduled job failed", extra={"job": job.name})
                raise
            metrics.JOB_RUNS.labels(job.name, "done").inc()

        schedule = {"cron": job.cron, "cron_offset": CRON_TZ, "schedule_id": job.name}
        return self.broker.register_task(run, task_name=job.task_name, schedule=[schedule])


def _event(event_id: int, claimed: dict[str, Any]) -> Event:
    """The event as the dispatcher claimed it, from the task's message."""
    return Event(
        id=event_id,
        topic=str(claimed["topic"]),
        payload=dict(claimed["payload"]),
        created_at=datetime.fromisoformat(str(claimed["created_at"])),
        attempts=int(claimed["attempts"]),
    )
