"""What the sync and async clients share: errors, URL building, the token
cache's arithmetic, retry decisions, the proxy's encoding, the SSE parser.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote

import httpx

#: The prefix that marks a header for the upstream.
FORWARD_PREFIX = "x-airlock-proxy-"
#: The first wait of a retry without `Retry-After`; doubled each time.
BASE_BACKOFF = 0.25
#: Longest event accepted from a log stream, in characters.
MAX_EVENT = 4 << 20
#: Times a broken log stream is opened again.
REOPEN = 5


class AirlockError(Exception):
    """Every error of this client."""


class AirlockApiError(AirlockError):
    """An error answer of the server, with its stable ``code``
    (``not_found``, ``rate_limited``, ``invalid_client``, ...; ``None`` for a
    body not in the API's shape) and ``retry_after`` in seconds."""

    def __init__(self, status: int, code: str | None, message: str, retry_after: int | None):
        super().__init__(f"{message} ({status})")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class AirlockConnectionError(AirlockError):
    """No answer: nothing listens there, or the connection broke."""


def refresh_margin(ttl: float) -> float:
    """How long before expiry a token of lifetime ``ttl`` seconds is replaced."""
    return min(ttl / 2, 60.0)


def encode_target(url: str) -> str:
    """``url`` as the proxy route's path segment: URL-safe base64, no padding."""
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def retry_after(headers: httpx.Headers) -> int | None:
    v = headers.get("retry-after", "").strip()
    return int(v) if v.isdigit() else None


def api_error(response: httpx.Response) -> AirlockApiError:
    """The error of an answer: the API's ``{"error": {"code", "message"}}``,
    the token endpoint's RFC 6749 shape, or neither."""
    after = retry_after(response.headers)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return AirlockApiError(response.status_code, err["code"], str(err.get("message")), after)
        if isinstance(err, str):
            return AirlockApiError(
                response.status_code, err, str(body.get("error_description") or err), after
            )
    text = response.text.strip()[:200] or f"HTTP {response.status_code}"
    return AirlockApiError(response.status_code, None, text, after)


def api_shaped(response: httpx.Response) -> AirlockApiError | None:
    """The API's own error, or ``None`` for another body (an upstream's)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            return AirlockApiError(
                response.status_code, err["code"], str(err.get("message")), retry_after(response.headers)
            )
    return None


def path(*segments: str) -> str:
    """A route of percent-encoded segments; ``.``, ``..`` and ``""`` are refused."""
    for s in segments:
        if s in ("", ".", ".."):
            raise ValueError(f"{s!r} is not a valid name or id")
    return "/" + "/".join(quote(s, safe="") for s in segments)


def check_base_url(base_url: str) -> str:
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https"):
        raise ValueError(f"invalid server URL {base_url!r}: the scheme must be http or https")
    if url.userinfo:
        raise ValueError("put no credentials in the server URL")
    return base_url.rstrip("/")


@dataclass
class ClientCredentials:
    """An OAuth client's id and secret (``POST /v1/oauth/clients``); the
    client fetches and refreshes its access tokens."""

    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None


@dataclass
class Token:
    value: str = field(repr=False)
    refresh_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


def token_form(creds: ClientCredentials) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    if creds.scope:
        form["scope"] = creds.scope
    return form


def token_from(response: httpx.Response, started: float) -> Token:
    if response.status_code != 200:
        raise api_error(response)
    body = response.json()
    ttl = float(body["expires_in"])
    return Token(body["access_token"], started + ttl - refresh_margin(ttl))


def retry_wait(
    response: httpx.Response, attempt: int, retries: int, max_wait: float, upstream: bool = False
) -> float | None:
    """The wait before retrying ``response``, or ``None`` not to retry. With
    ``upstream`` (the proxy: the answer may be an upstream's) only 429 is
    retried: an upstream's 503 may come after it acted on the request."""
    retried = (429,) if upstream else (429, 503)
    if response.status_code not in retried or attempt >= retries:
        return None
    after = retry_after(response.headers)
    wait = float(after) if after is not None else BASE_BACKOFF * 2**attempt
    return wait if wait <= max_wait else None


def proxy_parts(
    url: str, headers: dict[str, str] | None, json_body: Any, content: bytes | str | None
) -> tuple[str, dict[str, str], bytes | str | None]:
    if not url:
        raise ValueError("the proxy URL is empty")
    out = {FORWARD_PREFIX + k.lower(): v for k, v in (headers or {}).items()}
    if json_body is not None:
        content = json.dumps(json_body, separators=(",", ":"))
        out.setdefault(FORWARD_PREFIX + "content-type", "application/json")
    return encode_target(url), out, content


@dataclass
class ProxyResponse:
    """The upstream's answer."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class LogLine:
    """One log line: ``source`` (``log``, ``stdout``, ``stderr``), ``level``, ``elapsed_ms``, ``text``."""

    source: str
    elapsed_ms: int
    text: str
    level: str | None = None
    id: str | None = None


@dataclass
class LogEnd:
    """The run ended with ``status``."""

    status: str


class SseParser:
    """Splits Server-Sent Events off a text stream."""

    def __init__(self) -> None:
        self.buf = ""
        self.last_id: str | None = None

    def feed(self, text: str) -> Iterator[LogLine | LogEnd]:
        self.buf = (self.buf + text).replace("\r\n", "\n")
        if len(self.buf) > MAX_EVENT:
            raise AirlockError("the server sent an event larger than 4 MiB")
        while (end := self.buf.find("\n\n")) >= 0:
            block, self.buf = self.buf[:end], self.buf[end + 2 :]
            event, eid, data = "", None, []
            for line in block.split("\n"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "id":
                    eid = value
                elif name == "data":
                    data.append(value)
            if event == "log":
                if eid is not None:
                    self.last_id = eid
                raw = json.loads("\n".join(data))
                yield LogLine(
                    source=raw.get("source", ""),
                    elapsed_ms=int(raw.get("elapsed_ms", 0)),
                    text=raw.get("text", ""),
                    level=raw.get("level"),
                    id=eid,
                )
            elif event == "end":
                raw = json.loads("\n".join(data) or "{}")
                yield LogEnd(status=raw.get("status", "unknown"))
