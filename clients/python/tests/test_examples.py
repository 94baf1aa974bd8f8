"""examples/backend.py against a real ``airlock serve``: a connect link, the
end user's accounts, a proxy call through a loopback upstream, and a run of
the example step ``hello`` with its streamed log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from airlock_client import Client

from conftest import HELLO_WASM

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "backend.py"


def test_the_backend_example(start_airlock, echo, echo_apps):
    airlock = start_airlock("--allow-range", "127.0.0.0/8", "--apps-dir", str(echo_apps))
    with Client(airlock.base, api_key=airlock.admin) as admin:
        account = admin.create_account("alpha", app="echo", external_user_id="u1", credentials={"token": "t-1"})
        admin.put_step("alpha", "hello", Path(HELLO_WASM).read_bytes())
        backend = admin.create_oauth_client(
            "backend", ["accounts:read", "accounts:write", "proxy", "runs:read", "runs:write"], "alpha"
        )
    env = {
        **os.environ,
        "AIRLOCK_SERVER": airlock.base,
        "AIRLOCK_CLIENT_ID": backend.client_id,
        "AIRLOCK_CLIENT_SECRET": backend.client_secret,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
    }
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "alpha", "u1", f"{echo.url}/me", "hello"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert re.search(rf"^connect link: {re.escape(airlock.base)}/connect/\S+$", out, re.M), out
    assert f"account {account.id} (echo, healthy)" in out
    assert re.search(r"^proxy: 200 \{", out, re.M), out
    assert echo.seen[-1]["path"] == "/me"
    assert re.search(r"^\s+\d+ms greeting u1$", out, re.M), out
    assert re.search(r"^run \S+ succeeded$", out, re.M), out
