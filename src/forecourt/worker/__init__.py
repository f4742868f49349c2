"""Background work: the task queue, workers and scheduled jobs."""

from forecourt.worker.jobs import Job, JobRegistry, jobs, scheduled
from forecourt.worker.task_runtime import TaskRuntime

__all__ = ["Job", "JobRegistry", "TaskRuntime", "jobs", "scheduled"]
