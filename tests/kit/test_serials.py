"""Serial numbers: shape, offline verification, uniqueness under concurrency."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from forecourt.kit import clock, serials

KEY = b"test-only serial key"


def test_shape_and_verification() -> None:
    moment = datetime(2026, 11, 24, 4, 5, 6, 789000, tzinfo=UTC)
    serial = serials.new_serial(KEY, device="pos-7", now=moment)
    assert len(serial) == 32
    assert serial[:16] == "261124120506T789"  # Asia/Shanghai business time
    check = serials.verify(KEY, serial, device="pos-7")
    assert check.valid
    assert check.reason is None
    assert check.issued_at == datetime(2026, 11, 24, 12, 5, 6, 789000, tzinfo=clock.BUSINESS_TZ)
    assert check.device == serials.device_digest("pos-7")


def test_forgery_and_typos_are_detected() -> None:
    serial = serials.new_serial(KEY, device="pos-7")
    assert not serials.verify(b"another key", serial).valid
    for i in range(32):
        for ch in "0AZ":
            if serial[i] == ch:
                continue
            changed = serial[:i] + ch + serial[i + 1 :]
            assert not serials.verify(KEY, changed).valid, (i, ch)
    assert serials.verify(KEY, serial, device="pos-8").reason == "issued by another device"
    assert serials.verify(KEY, serial[:-1]).reason == "must be 32 characters"
    assert serials.verify(KEY, "991399" + serial[6:]).reason == "not a valid time"
    assert max(len(run) for run in re.findall(r"\d+", serial)) == 12


def test_unique_under_concurrency() -> None:
    moment = datetime(2026, 11, 24, 4, 5, 6, tzinfo=UTC)
    out: list[str] = []

    def work() -> None:
        out.extend(serials.new_serial(KEY, device="node-1", now=moment) for _ in range(5000))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(out) == 40000
    assert len(set(out)) == 40000
    assert all(serials.verify(KEY, s).valid for s in out[:100])
