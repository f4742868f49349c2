"""Auth routes: driver and staff logins, token rotation, the caller's profile, staff accounts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from forecourt.auth import service
from forecourt.auth import staff as accounts
from forecourt.auth.schemas import (
    MemberLoginOut,
    MemberOut,
    PasswordReset,
    RefreshIn,
    Role,
    SandboxJsCodeIn,
    SandboxJsCodeOut,
    SmsLoginIn,
    SmsSendIn,
    SmsSendOut,
    StaffCreate,
    StaffLoginIn,
    StaffLoginOut,
    StaffOut,
    StaffPage,
    StaffUpdate,
    TokenPair,
    WeChatLoginIn,
)
from forecourt.backoffice import audit
from forecourt.deps import AnyStaff, Manager, Member, Public, ReadSession, RuntimeDep, Session

logins = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Public])
me = APIRouter(tags=["auth"])
staff = APIRouter(prefix="/staff", tags=["staff"])

Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=200)]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad code"},
    422: {"description": "invalid input"},
    429: {"description": "rate limited (Retry-After)"},
}


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@logins.post(
    "/sms/send",
    response_model=SmsSendOut,
    response_model_exclude_none=True,
    responses={**PROBLEMS, 503: {"description": "SMS gateway down"}},
)
async def send_sms(runtime: RuntimeDep, request: Request, body: SmsSendIn) -> SmsSendOut:
    """Send a login code by SMS (anyone; rate-limited per phone and per IP)."""
    return await service.send_sms_code(runtime, phone=body.phone, ip=_ip(request))


@logins.post("/sms/login", response_model=MemberLoginOut, responses=PROBLEMS)
async def sms_login(runtime: RuntimeDep, request: Request, body: SmsLoginIn) -> MemberLoginOut:
    """Log a driver in with phone and SMS code; the first login creates the member (anyone)."""
    return await service.sms_login(runtime, phone=body.phone, code=body.code, ip=_ip(request))


@logins.post(
    "/wechat/login",
    response_model=MemberLoginOut,
    responses={**PROBLEMS, 403: {"description": "high risk"}, 503: {"description": "WeChat"}},
)
async def wechat_login(
    runtime: RuntimeDep, request: Request, body: WeChatLoginIn
) -> MemberLoginOut:
    """Log a driver in with a wx.login code; the first login creates the member (anyone)."""
    return await service.wechat_login(runtime, code=body.code, ip=_ip(request))


@logins.post(
    "/wechat/sandbox-code",
    response_model=SandboxJsCodeOut,
    responses={404: {"description": "no in-process sandbox"}},
)
async def wechat_sandbox_code(runtime: RuntimeDep, body: SandboxJsCodeIn) -> SandboxJsCodeOut:
    """Demo only: a wx.login code from the in-process WeChat sandbox (anyone; 404 otherwise)."""
    return service.sandbox_js_code(runtime, openid=body.openid)


@logins.post("/refresh", response_model=TokenPair, responses={401: {"description": "refused"}})
async def refresh(runtime: RuntimeDep, body: RefreshIn) -> TokenPair:
    """Rotate a refresh token (anyone holding one); a reused token revokes its family."""
    return await service.refresh(runtime, refresh_token=body.refresh_token)


@logins.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(runtime: RuntimeDep, body: RefreshIn) -> Response:
    """Revoke a refresh token and its family (anyone holding one)."""
    await service.logout(runtime, refresh_token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@logins.post(
    "/staff/login",
    response_model=StaffLoginOut,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "rate limited"}},
)
async def staff_login(runtime: RuntimeDep, request: Request, body: StaffLoginIn) -> StaffLoginOut:
    """Log a staff account in (anyone; rate-limited per username and per IP)."""
    return await service.staff_login(
        runtime, username=body.username, password=body.password, ip=_ip(request)
    )


@me.get("/me", response_model=MemberOut)
async def member_me(session: ReadSession, principal: Member) -> MemberOut:
    """The calling driver (drivers only)."""
    return await service.member_profile(session, principal=principal)


@staff.get("/me", response_model=StaffOut)
async def staff_me(session: ReadSession, principal: AnyStaff) -> StaffOut:
    """The calling staff account with its role and stations (any staff)."""
    return await service.staff_profile(session, principal=principal)


@staff.get("", response_model=StaffPage)
async def list_staff(
    session: ReadSession,
    principal: Manager,
    role: Role | None = None,
    station_id: int | None = None,
    active: bool | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> StaffPage:
    """Staff accounts: all (hq_admin) or the attendants of the caller's stations (manager)."""
    return await accounts.list_staff(
        session,
        principal=principal,
        role=role,
        station_id=station_id,
        active=active,
        offset=offset,
        limit=limit,
    )


@staff.post("", response_model=StaffOut, status_code=status.HTTP_201_CREATED)
async def create_staff(session: Session, principal: Manager, body: StaffCreate) -> StaffOut:
    """Create an account: any role (hq_admin) or an attendant of the caller's stations."""
    out = await accounts.create_staff_as(session, principal=principal, data=body)
    audit.record(
        session,
        principal,
        "staff.created",
        subject_type="staff",
        subject_id=out.id,
        station_id=out.station_ids[0] if len(out.station_ids) == 1 else None,
        details={"username": out.username, "role": out.role, "station_ids": out.station_ids},
    )
    return out


@staff.get("/{staff_id}", response_model=StaffOut)
async def get_staff(session: ReadSession, principal: Manager, staff_id: int) -> StaffOut:
    """One account within the caller's scope (hq_admin, station_manager; 404 outside)."""
    return await accounts.get_staff(session, principal=principal, staff_id=staff_id)


@staff.patch("/{staff_id}", response_model=StaffOut)
async def update_staff(
    session: Session, principal: Manager, staff_id: int, body: StaffUpdate
) -> StaffOut:
    """Change name, role, active flag or stations (hq_admin; manager: own attendants)."""
    out = await accounts.update_staff(session, principal=principal, staff_id=staff_id, data=body)
    audit.record(
        session,
        principal,
        "staff.updated",
        subject_type="staff",
        subject_id=staff_id,
        station_id=out.station_ids[0] if len(out.station_ids) == 1 else None,
        details={"changes": body.model_dump(mode="json", exclude_unset=True)},
    )
    return out


@staff.post("/{staff_id}/password", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def reset_password(
    session: Session, principal: Manager, staff_id: int, body: PasswordReset
) -> Response:
    """Set a new password; the account's refresh tokens are revoked (hq_admin; manager)."""
    await accounts.reset_password(
        session, principal=principal, staff_id=staff_id, password=body.password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router = APIRouter()
router.include_router(logins)
router.include_router(me)
router.include_router(staff)
