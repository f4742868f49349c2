"""The dashboard: sales of today (hourly) or the last 7 / 30 business days (daily)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.backoffice import sales_repository, totals
from forecourt.backoffice.schemas import Bucket, DashboardOut
from forecourt.errors import FieldError, NotFound, Unprocessable
from forecourt.kit import clock
from forecourt.kit.scope import require_station
from forecourt.station import repository as station_repository

DAYS = (1, 7, 30)
HOUR, DAY = 3600, 86_400


def window(days: int, now: datetime) -> tuple[datetime, datetime, int, int]:
    """[start, end), bucket size in seconds and bucket count, all in Asia/Shanghai days."""
    today = clock.local(now).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)
    end = start + timedelta(days=days)
    size = HOUR if days == 1 else DAY
    return start, end, size, days * DAY // size


def _label(moment: datetime, size: int) -> str:
    local = clock.local(moment)
    return local.strftime("%H:00") if size == HOUR else local.strftime("%Y-%m-%d")


async def dashboard(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int | None,
    days: int,
    now: datetime,
) -> DashboardOut:
    """Totals, by grade, by payment method and a series for the caller's stations."""
    if days not in DAYS:
        raise Unprocessable(
            "days must be 1, 7 or 30", errors=[FieldError("query.days", "must be 1, 7 or 30")]
        )
    station_ids: list[int] | None
    if station_id is not None:
        require_station(principal, station_id)
        if await station_repository.get(session, station_id) is None:
            raise NotFound(f"station {station_id} not found")
        station_ids = [station_id]
    elif principal.role == "hq_admin":
        station_ids = None
    else:
        station_ids = sorted(principal.station_ids)
    start, end, size, count = window(days, now)
    sales = await sales_repository.sales(
        session, station_ids=station_ids, start=start, end=end, bucket_seconds=size
    )
    refunds = await sales_repository.refunds(
        session, station_ids=station_ids, start=start, end=end, bucket_seconds=size
    )
    t = totals.totals(sales, refunds)
    series = []
    for i, line in enumerate(totals.buckets(sales, refunds, count)):
        at = start + timedelta(seconds=i * size)
        series.append(
            Bucket(
                start=at,
                label=_label(at, size),
                orders=line.orders,
                volume_ml=line.volume_ml,
                gross_fen=line.gross_fen,
                net_fen=line.net_fen,
            )
        )
    return DashboardOut(
        station_id=station_id,
        days=days,
        start=start,
        end=end,
        totals=t.total,
        by_grade=t.by_grade,
        by_method=t.by_method,
        series=series,
    )
