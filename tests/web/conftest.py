"""Browser tests of the driver app (H5 build) in Debian's Chromium against a real backend.

The `server` fixture runs `forecourt demo` (migrations, demo seed, in-process pump simulator
at high speed, sandbox payment providers) on a free loopback port with a temporary SQLite
database, serving the built app at /app. Pages are driven with Playwright through
`/usr/bin/chromium` (never a downloaded browser); screenshots of every step go to
`artifacts/web/`. Locally a missing Chromium or app build skips these tests; in CI (`CI=true`)
it fails them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Geolocation,
    Page,
    Playwright,
    async_playwright,
)

from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "web" / "app"
APP_DIST = APP_DIR / "dist" / "build" / "h5"
MP_DIST = APP_DIR / "dist" / "build" / "mp-weixin"
ADMIN_DIST = REPO / "web" / "admin" / "dist"
ARTIFACTS = REPO / "artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The driver stands next to KM001 (北京路, Kunming): WGS-84, as a phone's GPS reports it.
DRIVER_WGS84: Geolocation = {"latitude": 25.0579, "longitude": 102.7204}
NEAREST_STATION = 1
SIMULATED = 3  # KM001..KM003 have moving pumps


def missing(what: str) -> NoReturn:
    """Skip locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"CI requires {what}")
    pytest.skip(f"{what} missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running backend with the app, plus API helpers for test set-up."""

    base: str
    workdir: Path
    process: subprocess.Popen[bytes]
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=15)

    @property
    def app(self) -> str:
        return f"{self.base}/app/"

    def staff_password(self, username: str) -> str:
        creds: dict[str, str] = json.loads(
            (self.workdir / "var" / "demo-credentials.json").read_text()
        )
        return creds[username]

    def member(self, phone: str) -> dict[str, Any]:
        """Sign a driver in through the SMS sandbox; returns the login answer."""
        sent = self.http.post("/api/v1/auth/sms/send", json={"phone": phone})
        sent.raise_for_status()
        code = sent.json()["sandbox_code"]
        login = self.http.post("/api/v1/auth/sms/login", json={"phone": phone, "code": code})
        login.raise_for_status()
        answer: dict[str, Any] = login.json()
        return answer

    def staff_token(self, username: str) -> str:
        res = self.http.post(
            "/api/v1/auth/staff/login",
            json={"username": username, "password": self.staff_password(username)},
        )
        res.raise_for_status()
        return str(res.json()["access_token"])

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        res = self.http.get(path, params=params, headers=headers)
        res.raise_for_status()
        return res.json()

    def post(self, path: str, body: Any, token: str | None = None, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key:
            headers["Idempotency-Key"] = key
        res = self.http.post(path, json=body, headers=headers)
        res.raise_for_status()
        return res.json() if res.content else None

    def nozzles(self, station: int = NEAREST_STATION) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"/api/v1/stations/{station}/nozzles")
        return data

    def settle_at_counter(self, station: int = NEAREST_STATION) -> bool:
        """The station's cashier takes cash for the oldest sale of a pump that holds three
        unpaid ones (the simulator sends no car to such a pump); False when none does."""
        unpaid: dict[int, list[dict[str, Any]]] = {}
        for nozzle in self.nozzles(station)["nozzles"]:
            unpaid.setdefault(nozzle["fp"], []).extend(nozzle["payable"])
        full = [sales for sales in unpaid.values() if len(sales) >= 3]
        if not full:
            return False
        oldest = min(full[0], key=lambda sale: sale["seq"])
        headers = {"Authorization": f"Bearer {self.staff_token('attendant')}"}
        base = f"/api/v1/admin/stations/{station}/fuelling-points/{oldest['fp']}/sales"
        for step in ("lock", "clear"):
            res = self.http.post(f"{base}/{oldest['seq']}/{step}", headers=headers)
            if res.status_code != 200:  # paid or settled meanwhile: the grid moves anyway
                return False
        return True

    def wait_for(self, what: str, check: Any, timeout: float = 30.0, every: float = 0.3) -> Any:
        """Poll `check()` until it returns something truthy."""
        end = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(every)


async def until(what: str, check: Any, within: float = 30.0, every: float = 0.3) -> Any:
    """Poll `check()` (sync) without blocking the event loop, until it returns something truthy."""
    end = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def _server_env(port: int, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECOURT_")}
    env.update(
        {
            "FORECOURT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'web.db'}",
            "FORECOURT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "FORECOURT_APP_DIST_DIR": str(APP_DIST),
            "FORECOURT_ADMIN_DIST_DIR": str(ADMIN_DIST),
            "FORECOURT_SIMULATOR_SPEED": "10",
            "FORECOURT_SIMULATOR_MAX_STATIONS": str(SIMULATED),
            "FORECOURT_SHOW_SANDBOX_SMS_CODE": "true",
            "FORECOURT_SMS_PER_IP_PER_HOUR": "1000",
            "FORECOURT_SMS_PER_PHONE_PER_HOUR": "100",
            "FORECOURT_LOGIN_PER_IP_PER_HOUR": "1000",
            "FORECOURT_LOGIN_PER_PHONE_PER_HOUR": "100",
            "FORECOURT_LOG_JSON": "false",
            "FORECOURT_ACCESS_LOG": "false",
            "FORECOURT_SPATIAL_REFRESH_SECONDS": "0.5",
        }
    )
    return env


@pytest.fixture(scope="session")
def app_build() -> Path:
    """The built H5 app (`make app`)."""
    if not (APP_DIST / "index.html").exists():
        missing(f"the built driver app at {APP_DIST} (run `make app`)")
    return APP_DIST


@pytest.fixture(scope="session")
def server(app_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`forecourt demo` on a free loopback port with a fresh SQLite database."""
    workdir = tmp_path_factory.mktemp("web-server")
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            str(Path(sys.executable).parent / "forecourt"),
            "demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=workdir,
        env=_server_env(port, workdir),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    srv = Server(base=f"http://127.0.0.1:{port}", workdir=workdir, process=process)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited with {process.returncode}; see {ARTIFACTS}/server.log"
            )
        try:
            app = srv.http.get("/app/")
            nozzles = srv.http.get(f"/api/v1/stations/{NEAREST_STATION}/nozzles")
        except httpx.HTTPError:
            return False
        return (
            app.status_code == 200
            and nozzles.status_code == 200
            and nozzles.json()["gateway_online"]
        )

    try:
        srv.wait_for("the demo server", ready, timeout=90, every=0.5)
        yield srv
    finally:
        srv.http.close()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as pw:
        yield pw


def _have_chromium() -> bool:
    return CHROMIUM.exists() and shutil.which(str(CHROMIUM)) is not None


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """Debian's Chromium; Playwright never downloads a browser here."""
    if not _have_chromium():
        missing(f"{CHROMIUM} (apt-get install chromium fonts-wqy-microhei)")
    chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()


class Shots:
    """Numbered screenshots of one test in artifacts/web/."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^a-zA-Z0-9_]+", "_", test_name).strip("_")
        self.n = 0
        for old in ARTIFACTS.glob(f"{self.prefix}-*.png"):
            old.unlink()

    async def __call__(self, page: Page, name: str, full_page: bool = False) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.prefix}-{self.n:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return Shots(request.node.name)


@dataclass
class Driver:
    """A browser context as a driver's phone: position, locale, errors seen."""

    context: BrowserContext
    page: Page
    errors: list[str]
    external: list[str]


@pytest.fixture
async def driver(browser: Browser, server: Server) -> AsyncIterator[Driver]:
    """A fresh phone (390x844, touch, zh-CN, Asia/Shanghai) next to the nearest station."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation=DRIVER_WGS84,
        permissions=["geolocation"],
    )
    external: list[str] = []

    async def only_loopback(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            external.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_loopback)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield Driver(context=context, page=page, errors=errors, external=external)
    await context.close()


async def sign_in(d: Driver, server: Server, phone: str) -> dict[str, Any]:
    """Put a signed-in driver's tokens where the app keeps them (before the app loads)."""
    login = server.member(phone)
    stored = json.dumps(
        {
            "access": login["access_token"],
            "refresh": login["refresh_token"],
            "member": login["member"],
        }
    )
    await d.context.add_init_script(
        "if (location.protocol === 'http:' && !localStorage.getItem('fc.session')) "
        f"localStorage.setItem('fc.session', {json.dumps(stored)});"
    )
    return login


# --- the back-office console (web/admin, served at /admin) ---


@pytest.fixture(scope="session")
def admin_build() -> Path:
    """The built back-office console (`make admin`)."""
    if not (ADMIN_DIST / "index.html").exists():
        missing(f"the built back-office console at {ADMIN_DIST} (run `make admin`)")
    return ADMIN_DIST


@dataclass
class Console:
    """A browser context as a staff member's desktop: locale, errors seen, outside requests."""

    context: BrowserContext
    page: Page
    errors: list[str]
    external: list[str]
    base: str

    @property
    def url(self) -> str:
        return f"{self.base}/admin/"


@pytest.fixture
async def console(browser: Browser, server: Server, admin_build: Path) -> AsyncIterator[Console]:
    """A fresh desktop browser (1440x900, zh-CN, Asia/Shanghai) that reaches only the server."""
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900},
        device_scale_factor=1,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    external: list[str] = []

    async def only_loopback(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            external.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_loopback)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield Console(context=context, page=page, errors=errors, external=external, base=server.base)
    await context.close()


async def staff_sign_in(c: Console, server: Server, username: str) -> dict[str, Any]:
    """Put a signed-in staff member's session where the console keeps it (before it loads)."""
    res = server.http.post(
        "/api/v1/auth/staff/login",
        json={"username": username, "password": server.staff_password(username)},
    )
    res.raise_for_status()
    login: dict[str, Any] = res.json()
    stored = json.dumps(
        {
            "access": login["access_token"],
            "refresh": login["refresh_token"],
            "staff": login["staff"],
        }
    )
    await c.context.add_init_script(
        "if (!localStorage.getItem('fc.admin')) "
        f"localStorage.setItem('fc.admin', {json.dumps(stored)});"
    )
    return login
