"""The app's typed API client (web/app/src/api/schema.d.ts) matches the backend's OpenAPI
document: a change to the API that the client has not picked up fails here (and `make app`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from forecourt.app import create_app
from tests.web.conftest import APP_DIR, missing


def test_typed_client_matches_openapi(tmp_path: Path) -> None:
    node = shutil.which("node")
    if not node or not (APP_DIR / "node_modules" / "openapi-typescript").exists():
        missing("node and web/app/node_modules (run `make app`)")
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(create_app().openapi()))
    run = subprocess.run(  # noqa: S603 - the project's own generator
        [node, "scripts/gen-api.mjs", "--check", str(doc)],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
