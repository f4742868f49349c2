"""Auth rules: SMS and WeChat logins for drivers, staff login, token rotation, profiles.

Staff account management lives in `auth.staff`; `create_staff` and `hash_password` are
re-exported here for seeds and other areas.

Login flows open their own units of work (`runtime.db.unit_of_work()`) instead of the request's:
a wrong SMS code must still count against the code, and a reused refresh token must still
revoke its family, although the request then fails. Each such write commits in its own unit of
work before the error is raised; everything else rolls back with the failing request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth import repository
from forecourt.auth.errors import (
    AccountDisabled,
    InvalidCredentials,
    RefreshExpired,
    RefreshInvalid,
    RefreshReused,
    RefreshRevoked,
    SmsCodeExhausted,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeUsed,
    SmsUnavailable,
    WeChatCodeInvalid,
    WeChatHighRisk,
    WeChatRateLimited,
    WeChatUnavailable,
)
from forecourt.auth.models import Member, SmsCode
from forecourt.auth.passwords import burn_time, hash_password, verify_password
from forecourt.auth.schemas import (
    MemberLoginOut,
    MemberOut,
    SandboxJsCodeOut,
    SmsSendOut,
    StaffLoginOut,
    StaffOut,
    TokenPair,
)
from forecourt.auth.staff import create_staff, staff_out
from forecourt.auth.tokens import Kind, Principal, issue_access, new_refresh_token, refresh_token_id
from forecourt.errors import (
    AppError,
    FieldError,
    NotFound,
    RateLimited,
    Unauthorized,
)
from forecourt.integrations import wechat
from forecourt.integrations.sms import SmsError
from forecourt.kit import clock, phones
from forecourt.runtime import Runtime

log = logging.getLogger(__name__)

HOUR = 3600
MAX_CODE_ATTEMPTS = 5
SMS_TEMPLATE = "login_code"

__all__ = [
    "create_staff",
    "hash_password",
    "logout",
    "member_profile",
    "refresh",
    "send_sms_code",
    "sms_login",
    "staff_login",
    "wechat_login",
]


# -- helpers -------------------------------------------------------------------------------


async def _limit(runtime: Runtime, key: str, *, limit: int, what: str) -> None:
    try:
        await runtime.ratelimiter.hit(key, limit=limit, window=HOUR)
    except RateLimited as exc:
        log.info("rate limited", extra={"limit": key.rsplit(":", 1)[0]})
        raise RateLimited(
            f"too many {what}; try again in {exc.retry_after} s", retry_after=exc.retry_after
        ) from None


def _code_hash(runtime: Runtime, phone_hash: str, code: str) -> str:
    key = phones.derive_key(runtime.secrets.data_key, "sms-code")
    return hmac.new(key, f"{phone_hash}:{code}".encode(), hashlib.sha256).hexdigest()


async def _issue(
    session: AsyncSession,
    runtime: Runtime,
    *,
    kind: Kind,
    subject_id: int,
    role: str | None,
    family: str | None = None,
) -> TokenPair:
    settings = runtime.settings
    token, token_id = new_refresh_token()
    await repository.add_refresh_token(
        session,
        token_id=token_id,
        family=family or str(uuid.uuid4()),
        subject=f"{kind}:{subject_id}",
        expires_at=clock.now() + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    access = issue_access(
        runtime.secrets.jwt_key,
        kind=kind,
        subject_id=subject_id,
        role=role,
        ttl=settings.access_token_ttl_seconds,
    )
    return TokenPair(
        access_token=access,
        refresh_token=token,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


def _member_out(member: Member) -> MemberOut:
    return MemberOut(
        id=member.id,
        phone_masked=member.phone_masked,
        has_wechat=member.openid is not None,
        created_at=member.created_at,
    )


def _member_login(pair: TokenPair, member: Member, *, created: bool) -> MemberLoginOut:
    return MemberLoginOut(**pair.model_dump(), member=_member_out(member), created=created)


# -- drivers: SMS --------------------------------------------------------------------------


async def send_sms_code(runtime: Runtime, *, phone: str, ip: str) -> SmsSendOut:
    """Send a 6-digit login code to `phone` (normalized), rate-limited per phone and per IP."""
    settings = runtime.settings
    phone_hash = phones.blind_index(runtime.secrets.data_key, phone)
    await _limit(
        runtime,
        f"sms:ip:{ip}",
        limit=settings.sms_per_ip_per_hour,
        what="SMS codes requested from this address",
    )
    await _limit(
        runtime,
        f"sms:phone:{phone_hash}",
        limit=settings.sms_per_phone_per_hour,
        what="SMS codes for this phone number",
    )
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = settings.sms_code_ttl_seconds
    async with runtime.db.unit_of_work() as session:
        row = await repository.add_sms_code(
            session,
            phone_hash=phone_hash,
            code_hash=_code_hash(runtime, phone_hash, code),
            expires_at=clock.now() + timedelta(seconds=ttl),
        )
        code_id = row.id
    try:
        message_id = await runtime.sms.send(
            phone=phone,
            template=SMS_TEMPLATE,
            params={"code": code, "minutes": str(max(1, ttl // 60))},
        )
    except SmsError as exc:
        # The code never reached the phone: forget it so the previous one stays valid.
        async with runtime.db.unit_of_work() as session:
            await repository.delete_sms_code(session, code_id)
        raise SmsUnavailable(f"the SMS gateway refused the message ({exc.error})") from exc
    masked = phones.mask(phone)
    log.info("sms code sent", extra={"phone": masked, "message_id": message_id})
    show = settings.show_sandbox_sms_code and settings.env != "prod"
    return SmsSendOut(phone_masked=masked, expires_in=ttl, sandbox_code=code if show else None)


def _code_problem(row: SmsCode | None, *, now_ok: bool) -> AppError | None:
    if row is None:
        return SmsCodeInvalid(
            "no code was sent to this number", errors=[FieldError("body.code", "no code sent")]
        )
    if row.consumed_at is not None:
        return SmsCodeUsed(
            "this code was already used; request a new one",
            errors=[FieldError("body.code", "already used")],
        )
    if not now_ok:
        return SmsCodeExpired(
            "this code has expired; request a new one",
            errors=[FieldError("body.code", "expired")],
        )
    if row.attempts >= MAX_CODE_ATTEMPTS:
        return SmsCodeExhausted(
            "too many wrong codes; request a new one",
            errors=[FieldError("body.code", "too many wrong attempts")],
        )
    return None


async def _member_by_phone(
    session: AsyncSession, runtime: Runtime, *, phone: str, phone_hash: str
) -> tuple[Member, bool]:
    created = await repository.insert_member_if_absent(
        session,
        phone_hash=phone_hash,
        phone_cipher=phones.encrypt(runtime.secrets.data_key, phone),
        phone_masked=phones.mask(phone),
    )
    member = await repository.member_by_phone_hash(session, phone_hash)
    assert member is not None
    return member, created


async def sms_login(runtime: Runtime, *, phone: str, code: str, ip: str) -> MemberLoginOut:
    """Log a driver in with the newest code sent to `phone`; the first login creates them."""
    settings = runtime.settings
    phone_hash = phones.blind_index(runtime.secrets.data_key, phone)
    await _limit(
        runtime,
        f"login:sms:ip:{ip}",
        limit=settings.login_per_ip_per_hour,
        what="login attempts from this address",
    )
    await _limit(
        runtime,
        f"login:sms:phone:{phone_hash}",
        limit=settings.login_per_phone_per_hour,
        what="login attempts for this phone number",
    )
    # 1. Count the guess in its own unit of work: it must stick even when the code is wrong.
    async with runtime.db.unit_of_work() as session:
        now = clock.now()
        row = await repository.latest_sms_code(session, phone_hash=phone_hash)
        problem = _code_problem(row, now_ok=row is not None and row.expires_at > now)
        if problem is not None:
            raise problem
        assert row is not None
        attempts = await repository.claim_sms_attempt(
            session, code_id=row.id, max_attempts=MAX_CODE_ATTEMPTS, now=now
        )
        if attempts is None:  # a concurrent request changed the row: report its new state
            await session.refresh(row)
            raise _code_problem(row, now_ok=row.expires_at > now) or SmsCodeUsed()
        code_id, expected = row.id, row.code_hash
    if not hmac.compare_digest(_code_hash(runtime, phone_hash, code), expected):
        left = MAX_CODE_ATTEMPTS - attempts
        reason = f"wrong code, {left} attempt{'s' if left != 1 else ''} left"
        raise SmsCodeInvalid(reason, errors=[FieldError("body.code", reason)])
    # 2. Use the code and sign in, all or nothing.
    async with runtime.db.unit_of_work() as session:
        now = clock.now()
        if not await repository.consume_sms_code(session, code_id=code_id, now=now):
            raise SmsCodeUsed(errors=[FieldError("body.code", "already used")])
        member, created = await _member_by_phone(
            session, runtime, phone=phone, phone_hash=phone_hash
        )
        if member.status != "active":
            raise AccountDisabled("this member account is disabled")
        await repository.touch_member_login(session, member, at=now)
        pair = await _issue(session, runtime, kind="member", subject_id=member.id, role=None)
        out = _member_login(pair, member, created=created)
    log.info("member login", extra={"member_id": member.id, "method": "sms", "new": created})
    return out


# -- drivers: WeChat -----------------------------------------------------------------------


def _wechat_problem(exc: wechat.WeChatError) -> AppError:
    if exc.errcode in (wechat.client.INVALID_CODE, wechat.client.CODE_USED):
        return WeChatCodeInvalid(
            "WeChat rejected the login code (unknown, expired or already used); call wx.login "
            "again",
            errors=[FieldError("body.code", f"rejected by WeChat ({exc.errcode})")],
        )
    if exc.errcode == wechat.client.HIGH_RISK:
        return WeChatHighRisk("WeChat blocked this login as high risk (40226)")
    if exc.errcode == wechat.client.RATE_LIMITED:
        return WeChatRateLimited("WeChat rate limit reached (45011)", retry_after=60)
    log.warning("wechat login failed", extra={"errcode": exc.errcode})
    return WeChatUnavailable(f"WeChat could not log this user in ({exc.errcode})")


async def wechat_login(runtime: Runtime, *, code: str, ip: str) -> MemberLoginOut:
    """Log a driver in with a wx.login code (code2Session); the first login creates them."""
    await _limit(
        runtime,
        f"login:wechat:ip:{ip}",
        limit=runtime.settings.login_per_ip_per_hour,
        what="login attempts from this address",
    )
    try:
        session_info = await runtime.wechat.code2session(code)
    except wechat.WeChatError as exc:
        raise _wechat_problem(exc) from exc
    async with runtime.db.unit_of_work() as session:
        now = clock.now()
        created = await repository.insert_member_if_absent(
            session, openid=session_info.openid, unionid=session_info.unionid
        )
        member = await repository.member_by_openid(session, session_info.openid)
        assert member is not None
        if member.status != "active":
            raise AccountDisabled("this member account is disabled")
        await repository.touch_member_login(session, member, at=now, unionid=session_info.unionid)
        pair = await _issue(session, runtime, kind="member", subject_id=member.id, role=None)
        out = _member_login(pair, member, created=created)
    log.info("member login", extra={"member_id": member.id, "method": "wechat", "new": created})
    return out


def sandbox_js_code(runtime: Runtime, *, openid: str | None) -> SandboxJsCodeOut:
    """Demo only: a wx.login code from the in-process WeChat sandbox."""
    sandbox = runtime.wechat_sandbox
    if (
        sandbox is None
        or runtime.settings.env == "prod"
        or not runtime.settings.show_sandbox_sms_code
    ):
        raise NotFound("the WeChat sandbox is not running in this process")
    openid = openid or wechat.sandbox.test_openid()
    return SandboxJsCodeOut(js_code=sandbox.mint_code(openid), openid=openid)


async def member_profile(session: AsyncSession, *, principal: Principal) -> MemberOut:
    """The calling driver's profile."""
    member = await repository.get_member(session, principal.id)
    if member is None or member.status != "active":
        raise Unauthorized("member account not found")
    return _member_out(member)


# -- tokens --------------------------------------------------------------------------------


async def _subject_role(session: AsyncSession, subject: str) -> tuple[Kind, int, str | None]:
    kind, _, raw_id = subject.partition(":")
    subject_id = int(raw_id)
    if kind == "member":
        member = await repository.get_member(session, subject_id)
        if member is None or member.status != "active":
            raise AccountDisabled("this member account is disabled")
        return "member", subject_id, None
    staff = await repository.get_staff(session, subject_id)
    if staff is None or not staff.active:
        raise AccountDisabled("this staff account is disabled")
    return "staff", subject_id, staff.role


async def refresh(runtime: Runtime, *, refresh_token: str) -> TokenPair:
    """Swap a refresh token for a new pair; a token used twice revokes its whole family."""
    failure: AppError | None = None
    async with runtime.db.unit_of_work() as session:
        now = clock.now()
        row = await repository.refresh_token_for_update(session, refresh_token_id(refresh_token))
        if row is None:
            raise RefreshInvalid("unknown refresh token")
        if row.revoked_at is not None:
            raise RefreshRevoked("this refresh token was revoked; log in again")
        if row.expires_at <= now:
            raise RefreshExpired("this refresh token has expired; log in again")
        if row.used_at is not None or not await repository.mark_refresh_used(
            session, token_id=row.id, now=now
        ):
            await repository.revoke_family(session, family=row.family, now=now)
            log.warning("refresh token reused; family revoked", extra={"subject": row.subject})
            failure = RefreshReused("this refresh token was already used; log in again")
        else:
            kind, subject_id, role = await _subject_role(session, row.subject)
            pair = await _issue(
                session, runtime, kind=kind, subject_id=subject_id, role=role, family=row.family
            )
    if failure is not None:
        raise failure  # after the commit, so the family stays revoked
    return pair


async def logout(runtime: Runtime, *, refresh_token: str) -> None:
    """Revoke the refresh token's family (unknown tokens are ignored)."""
    async with runtime.db.unit_of_work() as session:
        row = await repository.refresh_token_for_update(session, refresh_token_id(refresh_token))
        if row is not None:
            await repository.revoke_family(session, family=row.family, now=clock.now())


# -- staff: login and self -----------------------------------------------------------------


async def staff_login(runtime: Runtime, *, username: str, password: str, ip: str) -> StaffLoginOut:
    """Log a staff account in with username and password, rate-limited per username and IP."""
    settings = runtime.settings
    await _limit(
        runtime,
        f"login:staff:ip:{ip}",
        limit=settings.login_per_ip_per_hour,
        what="login attempts from this address",
    )
    await _limit(
        runtime,
        f"login:staff:user:{username}",
        limit=settings.login_per_phone_per_hour,
        what="login attempts for this account",
    )
    async with runtime.db.read_only() as session:
        staff = await repository.staff_by_username(session, username)
        stored = staff.password_hash if staff else None
    if stored is None:
        await asyncio.to_thread(burn_time, password)
        raise InvalidCredentials("wrong username or password")
    if not await asyncio.to_thread(verify_password, password, stored):
        raise InvalidCredentials("wrong username or password")
    async with runtime.db.unit_of_work() as session:
        staff = await repository.staff_by_username(session, username)
        if staff is None or not staff.active:
            raise AccountDisabled("this staff account is disabled")
        pair = await _issue(session, runtime, kind="staff", subject_id=staff.id, role=staff.role)
        stations = (await repository.station_ids_of(session, [staff.id]))[staff.id]
        out = StaffLoginOut(**pair.model_dump(), staff=staff_out(staff, stations))
    log.info("staff login", extra={"staff_id": out.staff.id, "role": out.staff.role})
    return out


async def staff_profile(session: AsyncSession, *, principal: Principal) -> StaffOut:
    """The calling staff account."""
    staff = await repository.get_staff(session, principal.id)
    if staff is None:
        raise Unauthorized("staff account not found")
    return staff_out(staff, sorted(principal.station_ids))
