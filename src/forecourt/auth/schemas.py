"""Request and response models for logins, tokens, the caller's profile and staff accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from forecourt.kit import phones

Role = Literal["hq_admin", "station_manager", "attendant"]


def _phone(value: str) -> str:
    try:
        return phones.normalize(value)
    except phones.InvalidPhone as exc:
        raise PydanticCustomError("phone", str(exc)) from None


def _lower(value: str) -> str:
    return value.lower()


Phone = Annotated[
    str,
    Field(max_length=20, examples=["13800138000"]),
    AfterValidator(_phone),
]
SmsCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["123456"])]
Username = Annotated[
    str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"), AfterValidator(_lower)
]
Password = Annotated[str, Field(min_length=8, max_length=128)]
DisplayName = Annotated[str, Field(min_length=1, max_length=64)]
StationIds = Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SmsSendIn(_In):
    """Ask for a login code by SMS."""

    phone: Phone


class SmsSendOut(BaseModel):
    """A code is on its way; `sandbox_code` appears only in the demo."""

    phone_masked: str
    expires_in: int
    sandbox_code: str | None = None


class SmsLoginIn(_In):
    """Log in with a phone number and the code sent to it."""

    phone: Phone
    code: SmsCode


class WeChatLoginIn(_In):
    """Log in with the code from wx.login."""

    code: Annotated[str, Field(min_length=1, max_length=128)]


class SandboxJsCodeIn(_In):
    """Demo only: ask the in-process WeChat sandbox for a wx.login code."""

    openid: Annotated[str | None, Field(min_length=6, max_length=64)] = None


class SandboxJsCodeOut(BaseModel):
    """A wx.login code the sandbox will resolve to `openid`."""

    js_code: str
    openid: str


class RefreshIn(_In):
    """A refresh token to rotate or revoke."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class StaffLoginIn(_In):
    """Staff username and password."""

    username: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_lower)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenPair(BaseModel):
    """A short-lived access token and a single-use refresh token."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_expires_in: int


class MemberOut(BaseModel):
    """The calling driver, phone masked."""

    id: int
    phone_masked: str | None
    has_wechat: bool
    created_at: datetime


class MemberLoginOut(TokenPair):
    """Tokens for a driver; `created` is true on the first login."""

    member: MemberOut
    created: bool


class StaffOut(BaseModel):
    """A staff account with its role and stations."""

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    station_ids: list[int]
    created_at: datetime


class StaffLoginOut(TokenPair):
    """Tokens for a staff account."""

    staff: StaffOut


class StaffPage(BaseModel):
    """A page of staff accounts."""

    items: list[StaffOut]
    total: int
    offset: int
    limit: int


class StaffCreate(_In):
    """A new staff account."""

    username: Username
    password: Password
    display_name: DisplayName
    role: Role
    station_ids: StationIds = Field(default_factory=list)


class StaffUpdate(_In):
    """Changes to a staff account; omitted fields stay as they are."""

    display_name: DisplayName | None = None
    role: Role | None = None
    active: bool | None = None
    station_ids: StationIds | None = None

    @field_validator("display_name", "role", "active", "station_ids")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("null", "may be omitted but not null")
        return value

    @model_validator(mode="after")
    def _something(self) -> StaffUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError("empty_update", "give at least one field to change")
        return self


class PasswordReset(_In):
    """A new password for a staff account."""

    password: Password
