"""WeCom tag sync: batched, retried with backoff, idempotent, newest wish wins (sandbox)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from forecourt.integrations.wecom.client import FREQ_LIMIT
from forecourt.kit import clock
from forecourt.loyalty import crm, crm_repository, tasks
from forecourt.loyalty.domain import DEFAULT_TIERS
from forecourt.loyalty.models import CrmSync
from forecourt.outbox import Event
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member, make_staff, staff_headers
from tests.loyalty.conftest import account, set_tier

TAG = {t.code: t.wecom_tag_id for t in DEFAULT_TIERS}


async def _changed(runtime: Runtime, *moves: tuple[int, str, str]) -> None:
    payload = {
        "changes": [{"member_id": m, "from": a, "to": b, "outcome": "x"} for m, a, b in moves]
    }
    event = Event(
        id=1, topic="loyalty.tiers_changed", payload=payload, created_at=clock.now(), attempts=0
    )
    async with runtime.db.unit_of_work() as session:
        await tasks.crm_wanted(session, event)


async def _row(runtime: Runtime, member_id: int) -> CrmSync:
    async with runtime.db.read_only() as session:
        row = await crm_repository.sync_row(session, member_id)
        assert row is not None
        session.expunge(row)
        return row


async def test_tier_tags_follow_tier_changes(runtime: Runtime) -> None:
    api, sandbox = crm.client_for(runtime.settings)
    assert sandbox is not None
    known = await make_member(runtime, openid="o-crm-known")
    stranger = await make_member(runtime, openid="o-crm-stranger")
    external = sandbox.add_customer("o-crm-known")
    await _changed(runtime, (known.id, "standard", "gold"), (stranger.id, "standard", "silver"))
    await _changed(runtime, (known.id, "gold", "gold"))  # a grace notice: no tag change

    await tasks.crm_sync(runtime)
    assert sandbox.tags_of(external) == {TAG["gold"]}
    assert (await account(runtime, known.id)).external_userid == external
    assert ((await _row(runtime, known.id)).status, (await _row(runtime, stranger.id)).status) == (
        "done",
        "no_contact",
    )
    await _changed(runtime, (known.id, "gold", "silver"))
    await tasks.crm_sync(runtime)
    assert sandbox.tags_of(external) == {TAG["silver"]}  # the old tier's tag is gone
    calls = sandbox.count("mark_tag")
    await tasks.crm_sync(runtime)  # nothing due: nothing sent
    assert sandbox.count("mark_tag") == calls
    await api.aclose()


async def test_rate_limits_back_off_and_stale_answers_never_win(runtime: Runtime) -> None:
    api, sandbox = crm.client_for(runtime.settings)
    assert sandbox is not None
    member = await make_member(runtime, openid="o-crm-limited")
    external = sandbox.add_customer("o-crm-limited")
    await _changed(runtime, (member.id, "standard", "diamond"))
    sandbox.fail_next(FREQ_LIMIT)
    now = clock.now()
    report = await crm.sync_due(
        runtime.db, api=api, settings=runtime.settings, now=now, sandbox=sandbox
    )
    assert (report.retrying, report.synced) == (1, 0)
    row = await _row(runtime, member.id)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "pending",
        1,
        now + timedelta(seconds=30),
    )
    assert "45009" in (row.last_error or "")
    early = await crm.sync_due(
        runtime.db, api=api, settings=runtime.settings, now=now, sandbox=sandbox
    )
    assert early.total == 0
    later = now + timedelta(seconds=31)
    done = await crm.sync_due(
        runtime.db, api=api, settings=runtime.settings, now=later, sandbox=sandbox
    )
    assert done.synced == 1
    assert sandbox.tags_of(external) == {TAG["diamond"]}

    stale = await _row(runtime, member.id)
    await _changed(runtime, (member.id, "diamond", "gold"))
    async with runtime.db.unit_of_work() as session:
        applied = await crm_repository.finish_sync(
            session, member_id=member.id, version=stale.version, values={"status": "done"}
        )
    assert applied is False
    assert (await _row(runtime, member.id)).status == "pending"
    await api.aclose()


async def test_head_office_sets_the_external_id(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    api, sandbox = crm.client_for(runtime.settings)
    assert sandbox is not None
    member = await make_member(runtime)  # no openid: only the back office knows the contact
    await set_tier(runtime, member.id, "gold")
    external = sandbox.add_customer("o-offline-only")
    hq = staff_headers(runtime, await make_staff(runtime, role="hq_admin"))
    resp = await client.put(
        f"/api/v1/admin/loyalty/members/{member.id}/wecom",
        json={"external_userid": external},
        headers=hq,
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["external_userid"], resp.json()["crm_status"]) == (external, "pending")
    await tasks.crm_sync(runtime)
    assert sandbox.tags_of(external) == {TAG["gold"]}
    looked = await client.get(f"/api/v1/admin/loyalty/members/{member.id}", headers=hq)
    assert (looked.json()["crm_status"], looked.json()["crm_tag"]) == ("done", TAG["gold"])
    await api.aclose()
