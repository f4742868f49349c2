"""Scheduled jobs: `@scheduled("area.job", cron="0 3 * * *")`, cron in business time."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forecourt.kit.clock import BUSINESS_TZ

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

JobFn = Callable[["Runtime"], Awaitable[None]]
CRON_TZ = str(BUSINESS_TZ)  # Asia/Shanghai


@dataclass(frozen=True)
class Job:
    """A job the scheduler sends to the task queue whenever `cron` matches (Asia/Shanghai)."""

    name: str
    cron: str
    fn: JobFn

    @property
    def task_name(self) -> str:
        """The taskiq task that runs it."""
        return f"forecourt.job.{self.name}"


class JobRegistry:
    """Job name -> job."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def scheduled(self, name: str, *, cron: str) -> Callable[[JobFn], JobFn]:
        """Decorator: run `async def job(runtime)` on the cron schedule; it must be safe twice."""

        def register(fn: JobFn) -> JobFn:
            self.add(name, fn, cron=cron)
            return fn

        return register

    def add(self, name: str, fn: JobFn, *, cron: str) -> Job:
        """Register a job; a name may be registered again only by the same function."""
        _check_cron(cron)
        known = self._jobs.get(name)
        if known is not None and known.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"job {name} is already {known.fn.__module__}.{known.fn.__qualname__}")
        job = Job(name=name, cron=cron, fn=fn)
        self._jobs[name] = job
        return job

    def get(self, name: str) -> Job:
        """One job by name (KeyError when unknown)."""
        return self._jobs[name]

    def all(self) -> list[Job]:
        """Every job, by name."""
        return [self._jobs[name] for name in sorted(self._jobs)]


_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+$")


def _check_cron(cron: str) -> None:
    fields = cron.split()
    if len(fields) != 5 or not all(_FIELD.match(field) for field in fields):
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday): {cron!r}")


jobs = JobRegistry()
scheduled = jobs.scheduled
