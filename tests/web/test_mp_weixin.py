"""The mp-weixin build, loaded and rendered by miniprogram-simulate (jest, web/app/tests-mp)."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.web.conftest import APP_DIR, ARTIFACTS, MP_DIST, missing


def test_mini_program_home_renders_in_the_simulator() -> None:
    jest = APP_DIR / "node_modules" / ".bin" / "jest"
    node = shutil.which("node")
    if not node or not jest.exists():
        missing("node and web/app/node_modules (run `make app`)")
    if not (MP_DIST / "app.js").exists():
        missing(f"the mp-weixin build at {MP_DIST} (run `make app`)")
    env = {**os.environ, "CI": "1"}
    run = subprocess.run(  # noqa: S603 - the project's own jest
        [str(jest), "--config", "tests-mp/jest.config.cjs", "--ci"],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "mp-weixin-jest.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout + run.stderr
