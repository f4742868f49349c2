"""Render the tab-bar icons (81x81 PNG, grey and orange-red) from inline SVG with Chromium.

Run once when an icon changes: `../../.venv/bin/python scripts/make-icons.py`; the PNGs are
committed (the mini-program's tab bar needs bitmap icons).
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "src" / "static" / "tab"
COLOURS = {"": "#5C6370", "-on": "#CC4A0B"}
ICONS = {
    # fuel pump
    "fuel": (
        '<rect x="14" y="12" width="34" height="56" rx="5" fill="none" stroke="CLR" stroke-width="6"/>'
        '<rect x="21" y="20" width="20" height="14" rx="2" fill="CLR"/>'
        '<path d="M48 30 h8 l8 8 v22 a5 5 0 0 1 -10 0 v-14 h-6" fill="none" stroke="CLR" '
        'stroke-width="6" stroke-linejoin="round"/><rect x="8" y="66" width="46" height="6" rx="3" fill="CLR"/>'
    ),
    # map pin
    "station": (
        '<path d="M40 72 C26 54 16 44 16 31 a24 24 0 0 1 48 0 c0 13 -10 23 -24 41z" fill="none" '
        'stroke="CLR" stroke-width="6" stroke-linejoin="round"/><circle cx="40" cy="31" r="8" fill="CLR"/>'
    ),
    # receipt
    "orders": (
        '<path d="M18 10 h44 v62 l-7 -5 -7 5 -8 -5 -8 5 -7 -5 -7 5z" fill="none" stroke="CLR" '
        'stroke-width="6" stroke-linejoin="round"/><rect x="28" y="26" width="24" height="6" rx="3" fill="CLR"/>'
        '<rect x="28" y="40" width="24" height="6" rx="3" fill="CLR"/>'
    ),
    # person
    "me": (
        '<circle cx="40" cy="26" r="14" fill="none" stroke="CLR" stroke-width="6"/>'
        '<path d="M12 72 c2 -16 14 -24 28 -24 s26 8 28 24" fill="none" stroke="CLR" stroke-width="6" '
        'stroke-linecap="round"/>'
    ),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 81, "height": 81})
        for name, body in ICONS.items():
            for suffix, colour in COLOURS.items():
                svg = (
                    '<svg xmlns="http://www.w3.org/2000/svg" width="81" height="81" '
                    f'viewBox="0 0 80 80">{body.replace("CLR", colour)}</svg>'
                )
                page.set_content(
                    f'<html><body style="margin:0;background:transparent">{svg}</body></html>'
                )
                page.screenshot(path=str(OUT / f"{name}{suffix}.png"), omit_background=True)
        browser.close()


if __name__ == "__main__":
    main()
