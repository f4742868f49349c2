"""Navigation deep links: exact formats, names percent-encoded."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from forecourt.kit.navlinks import nav_links

NAME = "中国石化 昆明&北站,1号"


def test_links_have_the_documented_shapes() -> None:
    links = nav_links(lat=25.037024, lng=102.711437, name="中石化", origin=(25.0, 102.7))
    assert links.amap_web == (
        "https://uri.amap.com/navigation?to=102.711437,25.037024,%E4%B8%AD%E7%9F%B3%E5%8C%96"
        "&mode=car&src=forecourt&coordinate=gaode&callnative=1"
    )
    assert links.amap_app == (
        "amapuri://route/plan/?dlat=25.037024&dlon=102.711437"
        "&dname=%E4%B8%AD%E7%9F%B3%E5%8C%96&dev=0&t=0"
    )
    assert links.tencent == (
        "https://apis.map.qq.com/uri/v1/routeplan?type=drive&to=%E4%B8%AD%E7%9F%B3%E5%8C%96"
        "&tocoord=25.037024,102.711437&referer=forecourt"
    )
    baidu = parse_qs(urlsplit(links.baidu).query)
    assert links.baidu.startswith("https://api.map.baidu.com/direction?")
    assert baidu == {
        "origin": ["latlng:25.000000,102.700000|name:我的位置"],
        "destination": ["latlng:25.037024,102.711437|name:中石化"],
        "mode": ["driving"],
        "coord_type": ["gcj02"],
        "output": ["html"],
        "src": ["forecourt"],
    }


def test_names_with_separators_survive_encoding() -> None:
    links = nav_links(lat=25.0, lng=102.0, name=NAME)
    to = urlsplit(links.amap_web).query.split("&")[0]
    assert to.count(",") == 2  # lon,lat,name: the comma in the name is encoded
    assert parse_qs(urlsplit(links.amap_web).query)["to"] == [f"102.000000,25.000000,{NAME}"]
    assert parse_qs(urlsplit(links.amap_app).query)["dname"] == [NAME]
    assert parse_qs(urlsplit(links.tencent).query)["to"] == [NAME]
    assert "origin" not in parse_qs(urlsplit(links.baidu).query)
    for url in (links.amap_web, links.amap_app, links.tencent, links.baidu):
        assert " " not in url
        assert "中" not in url


def test_destination_links_are_the_links_without_an_origin() -> None:
    from forecourt.kit.navlinks import destination_links

    for lat, lng, name in ((25.037024, 102.711437, "中石化 A&B/站"), (39.9, 116.4, NAME)):
        links = nav_links(lat=lat, lng=lng, name=name)
        assert destination_links(lat=lat, lng=lng, name=name) == (
            links.amap_web,
            links.amap_app,
            links.tencent,
        )
