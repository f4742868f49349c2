"""Seed steps shared by the demo and benchmark data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.fuel.catalog import DEFAULT_GRADES
from forecourt.fuel.models import Grade, PriceCap


async def ensure_grades(session: AsyncSession) -> None:
    """Insert the default grades that are missing."""
    existing = set((await session.scalars(select(Grade.code))).all())
    for spec in DEFAULT_GRADES:
        if spec.code not in existing:
            session.add(
                Grade(code=spec.code, name=spec.name, kind=spec.kind, sort_order=spec.sort_order)
            )
    await session.flush()


async def ensure_caps(
    session: AsyncSession, *, province: str, caps: dict[str, int], since: datetime
) -> None:
    """Insert a province's caps unless the province already has some."""
    found = await session.scalar(select(PriceCap.id).where(PriceCap.province == province).limit(1))
    if found is not None:
        return
    for grade, cap in caps.items():
        session.add(PriceCap(province=province, grade_code=grade, cap_fen=cap, effective_at=since))
    await session.flush()
