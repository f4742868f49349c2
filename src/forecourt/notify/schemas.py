"""Request and response models for speaker announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

AnnouncementStatus = Literal["pending", "sent", "played", "expired", "rejected", "failed"]


class AnnounceIn(BaseModel):
    """Text for a station speaker to read out."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: Annotated[
        str, Field(min_length=1, max_length=100, examples=["微信支付 300.00 元，3号枪"])
    ]
    speaker: Annotated[int, Field(ge=1, le=9999)] = 1


class AnnouncementOut(BaseModel):
    """An announcement and how far it got (played / expired / rejected are the speaker's
    answers; failed = no answer before giving up)."""

    message_id: str
    station_id: int
    speaker: int
    text: str
    status: AnnouncementStatus
    attempts: int
    created_at: datetime
    acked_at: datetime | None


class AnnouncementList(BaseModel):
    """Recent announcements of a station, newest first."""

    items: list[AnnouncementOut]
