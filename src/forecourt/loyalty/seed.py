"""Demo data of loyalty: the default tiers and a points mall of everyday items (R15)."""

from __future__ import annotations

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.loyalty import mall_repository, pricing, repository
from forecourt.loyalty.domain import DEFAULT_TIERS
from forecourt.loyalty.models import MallItem

# sku, name, category, points, stock, monthly limit, description
MALL_ITEMS: tuple[tuple[str, str, str, int, int, int, str], ...] = (
    ("FUEL-ADD-01", "燃油宝 300ml", "养护", 680, 200, 2, "清洁积碳，节油养护"),
    ("WASH-FLUID-01", "玻璃水 2L（-25℃）", "养护", 220, 500, 4, "冬季防冻型"),
    ("CARWASH-01", "精致洗车券", "服务", 1200, 300, 2, "本站洗车房使用，30天有效"),
    ("OIL-5W30-01", "全合成机油 5W-30 4L", "养护", 5800, 60, 1, "适用多数家用轿车"),
    ("TISSUE-01", "车载纸巾 抽取式 2包", "日用", 90, 1000, 6, "100抽/包"),
    ("WIPER-01", "无骨雨刮片（一对）", "配件", 1500, 120, 1, "到店可免费安装"),
    ("WAX-01", "车蜡 300g", "养护", 980, 150, 2, "镀膜护漆"),
    ("WATER-01", "矿泉水 550ml ×12", "日用", 150, 800, 4, "便利店领取"),
    ("COFFEE-01", "咖啡券（中杯美式）", "餐饮", 260, 600, 8, "便利店咖啡机"),
    ("STORE-10-01", "便利店10元代金券", "代金券", 1000, 1000, 4, "满30元可用"),
    ("STORE-20-01", "便利店20元代金券", "代金券", 1900, 500, 2, "满60元可用"),
    ("FUEL-5-01", "5元加油抵用券", "代金券", 500, 2000, 4, "单笔加油满200元可用"),
    ("TIRE-GAUGE-01", "数显胎压计", "配件", 1600, 80, 1, "便携式"),
    ("CHARGER-01", "车载双口快充", "配件", 1400, 100, 1, "USB-A + USB-C"),
    ("PHONE-MOUNT-01", "出风口手机支架", "配件", 900, 150, 1, "重力感应"),
    ("FRESHENER-01", "车载香薰", "日用", 450, 300, 2, "淡雅木质香"),
    ("TOWEL-01", "超细纤维洗车毛巾 3条", "日用", 300, 400, 2, "吸水不掉毛"),
    ("SUNSHADE-01", "前挡遮阳挡", "配件", 1100, 100, 1, "折叠收纳"),
    ("ANTIFREEZE-01", "防冻液 2L", "养护", 1300, 120, 1, "-35℃"),
    ("BRAKE-FLUID-01", "刹车油 DOT4 1L", "养护", 1000, 80, 1, "到店可免费检测"),
    ("SNACK-01", "零食大礼包", "餐饮", 400, 300, 2, "便利店领取"),
    ("NOODLES-01", "桶装方便面 ×2", "餐饮", 120, 500, 4, "便利店领取"),
)


async def seed_loyalty(db: Database) -> int:
    """Insert the default tiers (when none) and the missing mall items; returns items added."""
    now = clock.now()
    added = 0
    async with db.unit_of_work() as session:
        if not await repository.tiers(session):
            await pricing.replace_tiers(
                session,
                [pricing.row_of_tier(t, updated_at=now) for t in DEFAULT_TIERS],
            )
        for sort, (sku, name, category, points, stock, limit, text) in enumerate(MALL_ITEMS):
            if await mall_repository.item_by_sku(session, sku) is not None:
                continue
            session.add(
                MallItem(
                    sku=sku,
                    name=name,
                    category=category,
                    points=points,
                    stock=stock,
                    monthly_limit=limit,
                    description=text,
                    active=True,
                    sort=sort,
                    updated_at=now,
                )
            )
            added += 1
    return added
