"""Starts a real ``airlock serve`` for a test: the binary from ``AIRLOCK_BIN``
(default ``target/debug/airlock`` of the repository), a fresh data
directory, a test master key, ``--listen 127.0.0.1:0``; an admin key made
with ``airlock admin create-key`` and the project ``alpha``. Also a loopback
upstream that echoes each request, and an apps directory pointing at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = os.environ.get("AIRLOCK_BIN", str(REPO / "target" / "debug" / "airlock"))
#: The example step ``hello``, built for wasm32-wasip2 by ``cargo test`` (tests/build.rs).
HELLO_WASM = os.environ.get(
    "AIRLOCK_TEST_HELLO_WASM", str(REPO / "examples" / "target" / "wasm32-wasip2" / "release" / "hello.wasm")
)
MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@dataclass
class Airlock:
    base: str
    admin: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    env.update(AIRLOCK_DATA=str(data), AIRLOCK_MASTER_KEY=MASTER_KEY)
    return env


@pytest.fixture
def start_airlock(tmp_path: Path) -> Iterator[Callable[..., Airlock]]:
    started: list[Airlock] = []

    def start(*args: str) -> Airlock:
        data = tmp_path / f"data{len(started)}"
        process = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", *args],
            env=_env(data),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            process.kill()
            raise RuntimeError(f"airlock serve did not start (is AIRLOCK_BIN={BIN} built?): {line!r}")
        # Keep reading stdout so the server never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        base = line.split()[2]
        admin = subprocess.run(
            [BIN, "admin", "create-key"], env=_env(data), check=True, capture_output=True, text=True
        ).stdout.strip()
        r = httpx.post(f"{base}/v1/projects", json={"name": "alpha"}, headers={"authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.text
        airlock = Airlock(base, admin, process)
        started.append(airlock)
        return airlock

    yield start
    for a in started:
        a.stop()


@dataclass
class Echo:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def echo() -> Iterator[Echo]:
    record = Echo("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            seen = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            record.seen.append(seen)
            out = json.dumps(seen).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield record
    server.shutdown()


@pytest.fixture
def echo_apps(tmp_path: Path, echo: Echo) -> Path:
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "echo.toml").write_text(
        f'slug = "echo"\nname = "echo"\nauth = "bearer"\nbase_url = "{echo.url}"\n'
        'allowed_domains = ["127.0.0.1"]\n[credential]\nheader = "Authorization"\n'
        'template = "Bearer {{token}}"\n'
    )
    return apps
