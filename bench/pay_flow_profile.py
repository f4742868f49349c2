"""Where the API's CPU goes during a pay-flow point: py-spy samples or cProfile statistics.

py-spy (``--py-spy PATH``; not a project dependency) samples the API process from outside
(``record --nonblocking --format raw --function``, idle threads left out, so a sample is CPU
time) and adds nothing to the process; cProfile (``bench/pay_flow_capture.py``) runs inside it
and slows Python calls more than C code, so its split is rougher.
"""

from __future__ import annotations

import pstats
import re
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")

# Own time of a sample goes to the component of its innermost frame (first match wins).
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("asyncpg (PostgreSQL protocol)", ("asyncpg/",)),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy/",)),
    ("greenlet (SQLAlchemy async bridge)", ("greenlet/",)),
    ("FastAPI / Starlette", ("fastapi/", "starlette/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("logging (JSON lines)", ("logging/", "forecourt/logs.py")),
    ("httpx / httpcore (client to WeChat Pay)", ("httpx/", "httpcore/", "h11/", "anyio/")),
    ("crypto (RSA, AES-GCM)", ("cryptography/", "wechatpay/crypto.py", "forecourt/kit/rsa.py")),
    ("uvicorn / httptools", ("uvicorn/", "httptools/")),
    ("MQTT (aiomqtt, paho)", ("aiomqtt/", "paho/")),
    ("taskiq (in-process task queue)", ("taskiq/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("JSON (json, orjson)", ("json/", "orjson")),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("forecourt (project code)", ("forecourt/",)),
)

# Inclusive: a sample counts for the first of these found from the innermost frame outwards.
ENTRIES: tuple[tuple[str, str], ...] = (
    ("POST /orders (endpoint function)", "create_order (forecourt/order/endpoints.py"),
    ("POST /orders/{id}/payments (endpoint function)", "pay_order (forecourt/payment/endpoints.py"),
    ("POST /payments/notify (endpoint function)", "provider_notification ("),
    ("request unit of work (session, commit)", "unit_of_work (forecourt/deps.py"),
    ("outbox dispatcher", "forecourt/outbox/dispatcher.py"),
    ("outbox event handlers (taskiq)", "forecourt/outbox/"),
    ("pump link (command acks)", "forecourt/pump/link/"),
    ("speaker sender", "forecourt/notify/speaker.py"),
    ("scheduler / task runtime", "forecourt/worker/"),
    ("access log and metrics middleware", "forecourt/middleware.py"),
    ("HTTP server and framework outside the above", "uvicorn/"),
)


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        if m:
            out.append((m.group("func"), m.group("path")))
        else:
            out.append((raw.strip(), ""))
    return out


def pyspy_summary(path: Path, flows: int, rate: float, top: int = 25) -> dict[str, Any]:
    """CPU per flow by component (own), by entry point (inclusive) and the busiest functions."""
    components: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = _frames(stack)
        func, where = frames[-1]
        leaves[f"{func} ({where})"] += n
        component = next((c for c, keys in COMPONENTS if any(k in where for k in keys)), "other")
        components[component] += n
        text = [f"{f} ({p}" for f, p in frames]
        entry = next(
            (name for name, key in ENTRIES if any(key in t for t in reversed(text))), "other"
        )
        entries[entry] += n
        for f, p in dict.fromkeys(frames):
            if p.startswith("forecourt/"):
                inclusive[f"{f} ({p})"] += n
    flows = max(1, flows)
    per_flow = 1000 / rate / flows  # ms of CPU per sample, per flow

    def table(counter: Counter[str], limit: int) -> list[tuple[str, float, float]]:
        return [(name, n * per_flow, n / max(1, samples)) for name, n in counter.most_common(limit)]

    return {
        "tool": "py-spy",
        "samples": samples,
        "ms_per_flow": samples * per_flow,
        "components": table(components, 20),
        "entries": table(entries, 20),
        "functions": table(leaves, top),
        "inclusive": table(inclusive, top),
    }


def cprofile_summary(path: Path, flows: int, root: Path, top: int = 25) -> dict[str, Any]:
    """Own and cumulative CPU time per flow of the busiest functions (cProfile statistics)."""
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    own: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = 0.0
    for (file, line, func), (_cc, _calls, tottime, _cumtime, _callers) in raw.items():
        where = file.replace(str(root) + "/src/", "").split("site-packages/")[-1]
        own[f"{func} ({where}:{line})"] += tottime
        total += tottime
        component = next((c for c, keys in COMPONENTS if any(k in where for k in keys)), "other")
        components[component] += tottime
    scale = 1000 / max(1, flows)
    total = max(total, 1e-9)
    # Cumulative times of coroutines are not meaningful under cProfile: only own time here.
    return {
        "tool": "cProfile",
        "ms_per_flow": total * scale,
        "components": [(n, t * scale, t / total) for n, t in components.most_common(20)],
        "functions": [(n, t * scale, t / total) for n, t in own.most_common(top)],
    }


def print_summary(s: dict[str, Any], what: str) -> None:
    """The tables of a summary."""
    print(f"profile ({s['tool']}, {what}): {s['ms_per_flow']:.1f} ms of API CPU per flow")
    for title, key in (
        ("by component (own time of the innermost frame)", "components"),
        ("by entry point (inclusive)", "entries"),
        ("busiest functions (own time)", "functions"),
        ("project code, inclusive", "inclusive"),
    ):
        rows = s.get(key) or []
        if not rows:
            continue
        print(f"  {title}:")
        for name, ms, share in rows:
            print(f"    {ms:7.2f} ms/flow {share:6.1%}  {name[:110]}")
