"""Auth errors, each with a stable `code` clients can branch on."""

from __future__ import annotations

from forecourt.errors import (
    AppError,
    Conflict,
    Forbidden,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)


class SmsCodeInvalid(AppError):
    """Wrong code, or no code was sent to this number."""

    status, code, title = 400, "sms_code_invalid", "Wrong SMS code"


class SmsCodeExpired(AppError):
    """The newest code for this number has expired."""

    status, code, title = 400, "sms_code_expired", "SMS code expired"


class SmsCodeUsed(AppError):
    """The newest code for this number was already used."""

    status, code, title = 400, "sms_code_used", "SMS code already used"


class SmsCodeExhausted(AppError):
    """Too many wrong guesses for this code."""

    status, code, title = 400, "sms_code_exhausted", "Too many wrong codes"


class SmsUnavailable(ServiceUnavailable):
    """The SMS gateway did not accept the message."""

    code, title = "sms_unavailable", "SMS gateway unavailable"


class WeChatCodeInvalid(AppError):
    """WeChat does not know the login code (unknown, expired or already used)."""

    status, code, title = 400, "wechat_code_invalid", "Invalid WeChat login code"


class WeChatHighRisk(Forbidden):
    """WeChat flagged the user as high risk (40226)."""

    code, title = "wechat_high_risk", "WeChat refused this user"


class WeChatRateLimited(RateLimited):
    """WeChat's own rate limit (45011)."""

    code, title = "wechat_rate_limited", "WeChat rate limit"


class WeChatUnavailable(ServiceUnavailable):
    """WeChat is busy, unreachable or refuses our credentials."""

    code, title = "wechat_unavailable", "WeChat unavailable"


class InvalidCredentials(Unauthorized):
    """Username or password wrong (never says which)."""

    code, title = "invalid_credentials", "Invalid username or password"


class AccountDisabled(Forbidden):
    """The account exists but may not log in."""

    code, title = "account_disabled", "Account disabled"


class RefreshInvalid(Unauthorized):
    """Unknown refresh token."""

    code, title = "refresh_invalid", "Invalid refresh token"


class RefreshExpired(Unauthorized):
    """The refresh token is past its lifetime."""

    code, title = "refresh_expired", "Refresh token expired"


class RefreshRevoked(Unauthorized):
    """The refresh token was revoked (logout, reuse, account change)."""

    code, title = "refresh_revoked", "Refresh token revoked"


class RefreshReused(Unauthorized):
    """An already-used refresh token came back: its whole family is now revoked."""

    code, title = "refresh_reused", "Refresh token reused"


class UsernameTaken(Conflict):
    """Another staff account has this username."""

    code, title = "username_taken", "Username taken"


class LastHqAdmin(Conflict):
    """The change would leave no active head-office administrator."""

    code, title = "last_hq_admin", "Last head-office administrator"
