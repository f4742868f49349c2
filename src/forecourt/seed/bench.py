"""`forecourt seed bench --stations N`: a China-wide synthetic station set."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, insert, select

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.fuel.catalog import YUNNAN_CAPS_FEN
from forecourt.fuel.models import StationPrice
from forecourt.kit import clock
from forecourt.seed.common import ensure_caps, ensure_grades
from forecourt.station.models import Station

# (province, city, lat, lng, weight): provincial capitals and large cities, WGS-84.
CITIES: tuple[tuple[str, str, float, float, int], ...] = (
    ("北京市", "北京市", 39.904, 116.407, 10),
    ("上海市", "上海市", 31.230, 121.474, 9),
    ("天津市", "天津市", 39.125, 117.190, 6),
    ("重庆市", "重庆市", 29.563, 106.551, 9),
    ("广东省", "广州市", 23.129, 113.264, 10),
    ("广东省", "深圳市", 22.543, 114.058, 8),
    ("广东省", "东莞市", 23.021, 113.752, 5),
    ("江苏省", "南京市", 32.060, 118.797, 7),
    ("江苏省", "苏州市", 31.299, 120.585, 7),
    ("浙江省", "杭州市", 30.274, 120.155, 8),
    ("浙江省", "宁波市", 29.868, 121.544, 5),
    ("山东省", "济南市", 36.651, 117.120, 6),
    ("山东省", "青岛市", 36.067, 120.383, 6),
    ("河南省", "郑州市", 34.747, 113.625, 8),
    ("河北省", "石家庄市", 38.042, 114.514, 6),
    ("湖北省", "武汉市", 30.593, 114.305, 8),
    ("湖南省", "长沙市", 28.228, 112.939, 7),
    ("四川省", "成都市", 30.573, 104.066, 9),
    ("陕西省", "西安市", 34.341, 108.940, 7),
    ("辽宁省", "沈阳市", 41.806, 123.432, 6),
    ("辽宁省", "大连市", 38.914, 121.615, 4),
    ("吉林省", "长春市", 43.817, 125.324, 5),
    ("黑龙江省", "哈尔滨市", 45.803, 126.535, 6),
    ("安徽省", "合肥市", 31.821, 117.227, 6),
    ("福建省", "福州市", 26.075, 119.296, 5),
    ("福建省", "厦门市", 24.480, 118.089, 4),
    ("江西省", "南昌市", 28.683, 115.858, 5),
    ("山西省", "太原市", 37.871, 112.549, 5),
    ("内蒙古自治区", "呼和浩特市", 40.842, 111.749, 4),
    ("广西壮族自治区", "南宁市", 22.817, 108.366, 5),
    ("海南省", "海口市", 20.044, 110.199, 3),
    ("贵州省", "贵阳市", 26.647, 106.630, 5),
    ("云南省", "昆明市", 25.038, 102.718, 6),
    ("西藏自治区", "拉萨市", 29.650, 91.100, 1),
    ("甘肃省", "兰州市", 36.061, 103.834, 4),
    ("青海省", "西宁市", 36.617, 101.778, 2),
    ("宁夏回族自治区", "银川市", 38.487, 106.231, 2),
    ("新疆维吾尔自治区", "乌鲁木齐市", 43.825, 87.617, 4),
    ("新疆维吾尔自治区", "喀什市", 39.470, 75.989, 2),
)
BRANDS = ("中国石化", "中国石油", "壳牌", "中化石油", "中海油", "延长石油", "民营")
GRADES = {"92": -20, "95": -25, "0": -15}
BATCH = 5000


def generate(n: int, seed: int) -> list[dict[str, Any]]:
    """N station rows clustered around cities (deterministic for a seed)."""
    rnd = random.Random(seed)
    weights = [c[4] for c in CITIES]
    rows = []
    for i in range(n):
        province, city, lat, lng, w = rnd.choices(CITIES, weights=weights)[0]
        spread = 0.08 + 0.04 * w
        r_lat = lat + rnd.gauss(0, spread)
        r_lng = lng + rnd.gauss(0, spread)
        open_24h = rnd.random() < 0.7
        rows.append(
            {
                "code": f"B{i + 1:07d}",
                "name": f"{city}第{i + 1}加油站",
                "brand": rnd.choice(BRANDS),
                "address": f"{city}测试大道{rnd.randint(1, 999)}号",
                "province": province,
                "city": city,
                "lat": round(max(-89.9, min(89.9, r_lat)), 6),
                "lng": round(r_lng, 6),
                "phone": None,
                "open_24h": open_24h,
                "opens_at": None if open_24h else "06:00",
                "closes_at": None if open_24h else "22:00",
                "services": ["shop"] if rnd.random() < 0.8 else [],
                "status": "active" if rnd.random() < 0.97 else "paused",
            }
        )
    return rows


async def run(settings: Settings, *, stations: int, seed: int, console: Console) -> None:
    """Insert `stations` generated stations with 92#/95#/0# prices under their caps."""
    db = Database(settings.database_url)
    since = clock.now() - timedelta(days=30)
    rnd = random.Random(seed + 1)
    try:
        async with db.unit_of_work() as session:
            await ensure_grades(session)
            for province in {c[0] for c in CITIES}:
                await ensure_caps(session, province=province, caps=YUNNAN_CAPS_FEN, since=since)
            before = int(await session.scalar(select(func.count(Station.id))) or 0)
        rows = generate(stations, seed)
        now = clock.now()
        with Progress(console=console) as progress:
            task = progress.add_task("stations", total=len(rows))
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                for row in chunk:
                    row["code"] = f"{row['code']}-{before}"
                    row["created_at"] = row["updated_at"] = now
                async with db.unit_of_work() as session:
                    ids = (
                        await session.scalars(insert(Station).returning(Station.id), chunk)
                    ).all()
                    prices = [
                        {
                            "station_id": sid,
                            "grade_code": grade,
                            "price_fen": YUNNAN_CAPS_FEN[grade] + offset - rnd.randint(0, 40),
                            "effective_at": since,
                            "created_at": since,
                            "announced_at": since,
                        }
                        for sid in ids
                        for grade, offset in GRADES.items()
                    ]
                    await session.execute(insert(StationPrice), prices)
                progress.advance(task, len(chunk))
        console.print(f"[green]{len(rows)} stations added ({before} were there)[/]")
    finally:
        await db.dispose()
