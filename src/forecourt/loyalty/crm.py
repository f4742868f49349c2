"""WeCom CRM sync (R7): each member's tier as a corporate tag on their external contact.

A tier change (outbox `loyalty.tiers_changed`) records the wanted tag per member in
`loyalty_crm_sync` (a newer wish bumps the version). The `loyalty.crm_sync` job sends due
rows in batches with bounded concurrency: `mark_tag` adds the tier's tag and removes every
other tier's tag, so a repeat is harmless and a stale tag is cleaned up. Rate limits and
outages are retried with capped exponential backoff; a reply for an older version never
overwrites a newer wish. Members whose external_userid is unknown are looked up by openid
once per wish; those who are not customers of the corp wait as `no_contact` until an id is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.integrations import wecom
from forecourt.integrations.wecom import WeComApi, WeComError, WeComSandbox
from forecourt.integrations.wecom.client import INVALID_EXTERNAL_USERID, NOT_CONTACT
from forecourt.loyalty import crm_repository, pricing, repository, service
from forecourt.loyalty.crm_repository import DueSync
from forecourt.loyalty.errors import MemberNotFound
from forecourt.outbox.retry import RetryPolicy

BACKOFF = RetryPolicy(base=timedelta(seconds=30), factor=2.0, cap=timedelta(hours=1))
NO_CONTACT = frozenset({NOT_CONTACT, INVALID_EXTERNAL_USERID})

_installed: tuple[Settings, WeComApi, WeComSandbox | None] | None = None


def install(settings: Settings, api: WeComApi, sandbox: WeComSandbox | None = None) -> None:
    """Use `api` (and its sandbox) for `settings` in this process (tests inject one)."""
    global _installed
    _installed = (settings, api, sandbox)


def client_for(settings: Settings) -> tuple[WeComApi, WeComSandbox | None]:
    """The process's WeCom client for these settings (built once; a sandbox when unset)."""
    if _installed is None or _installed[0] is not settings:
        api, sandbox = wecom.from_settings(settings)
        install(settings, api, sandbox)
    assert _installed is not None
    return _installed[1], _installed[2]


@dataclass
class SyncReport:
    """What one batch did."""

    synced: int = 0
    no_contact: int = 0
    failed: int = 0
    retrying: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows handled."""
        return self.synced + self.no_contact + self.failed + self.retrying


async def want_current_tags(
    session: AsyncSession, member_ids: Sequence[int], *, now: datetime
) -> None:
    """Queue a sync of the members' current tiers."""
    rows: list[tuple[int, str]] = []
    tiers = await pricing.ladder(session)
    for member_id in member_ids:
        account = await repository.account(session, member_id)
        rows.append((member_id, tiers.get(account.tier_code if account else None).code))
    await crm_repository.want_tags(session, rows, now=now)


async def set_external_userid(
    session: AsyncSession, *, member_id: int, external_userid: str, now: datetime
) -> None:
    """Record a member's WeCom external contact id and queue their tag."""
    if await repository.member(session, member_id) is None:
        raise MemberNotFound(f"no member {member_id}")
    account = await service.lock_account(session, member_id, now=now)
    account.external_userid = external_userid
    await want_current_tags(session, [member_id], now=now)


@dataclass
class _Outcome:
    member_id: int
    version: int
    values: dict[str, Any]
    external_userid: str | None = None


async def _one(
    api: WeComApi,
    row: DueSync,
    *,
    tags: dict[str, str],
    follow_user: str,
    gate: asyncio.Semaphore,
    throttled: asyncio.Event,
    now: datetime,
) -> _Outcome:
    done = _Outcome(row.member_id, row.version, {"attempts": row.attempts + 1, "updated_at": now})
    tag = tags.get(row.tier_code)
    if tag is None:  # the tier has no tag configured: nothing to mark
        done.values |= {"status": "done", "synced_tag": None, "last_error": None}
        return done
    async with gate:
        try:
            if throttled.is_set():
                raise WeComError(45033, "throttled earlier in this batch")
            external = row.external_userid
            if external is None and row.openid:
                external = await api.external_userid(openid=row.openid, unionid=row.unionid)
                done.external_userid = external
            if external is None:
                done.values |= {"status": "no_contact", "last_error": "no WeCom external contact"}
                return done
            others = sorted(t for code, t in tags.items() if code != row.tier_code and t != tag)
            await api.mark_tag(
                userid=follow_user, external_userid=external, add_tag=[tag], remove_tag=others
            )
        except WeComError as exc:
            error = f"{exc.errcode}: {exc.errmsg}"[:200]
            if exc.retryable:
                if exc.errcode is not None:
                    throttled.set()
                retry_at = now + BACKOFF.delay(row.attempts + 1)
                done.values |= {
                    "status": "pending",
                    "next_attempt_at": retry_at,
                    "last_error": error,
                }
            elif exc.errcode in NO_CONTACT:
                done.values |= {"status": "no_contact", "last_error": error}
            else:
                done.values |= {"status": "failed", "last_error": error}
            return done
    done.values |= {"status": "done", "synced_tag": tag, "last_error": None}
    return done


async def sync_due(
    db: Database, *, api: WeComApi, settings: Settings, now: datetime, sandbox: WeComSandbox | None
) -> SyncReport:
    """Send one batch of due tag syncs to WeCom and record the outcomes."""
    async with db.read_only() as session:
        tiers = await pricing.ladder(session)
        due = await crm_repository.due_syncs(session, now=now, limit=settings.wecom_sync_batch)
    report = SyncReport()
    if not due:
        return report
    tags = {t.code: t.wecom_tag_id for t in tiers.tiers if t.wecom_tag_id}
    if sandbox is not None:
        sandbox.tags.update(tags.values())  # the sandbox corp has the configured tags
    gate, throttled = asyncio.Semaphore(settings.wecom_sync_concurrency), asyncio.Event()
    outcomes = await asyncio.gather(
        *(
            _one(
                api,
                row,
                tags=tags,
                follow_user=settings.wecom_follow_userid,
                gate=gate,
                throttled=throttled,
                now=now,
            )
            for row in due
        )
    )
    async with db.unit_of_work() as session:
        for outcome in sorted(outcomes, key=lambda o: o.member_id):  # locks in id order
            if outcome.external_userid:
                account = await service.lock_account(session, outcome.member_id, now=now)
                account.external_userid = account.external_userid or outcome.external_userid
            await crm_repository.finish_sync(
                session, member_id=outcome.member_id, version=outcome.version, values=outcome.values
            )
            status = outcome.values["status"]
            if status == "done":
                report.synced += 1
            elif status == "no_contact":
                report.no_contact += 1
            elif status == "failed":
                report.failed += 1
                report.errors.append(str(outcome.values.get("last_error")))
            else:
                report.retrying += 1
    return report
