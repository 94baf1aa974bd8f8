"""The synchronous client, :class:`Client`."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, TypeVar

import httpx

from . import _routes as r
from . import models
from ._common import (
    REOPEN,
    AirlockConnectionError,
    AirlockError,
    ClientCredentials,
    LogEnd,
    LogLine,
    ProxyResponse,
    SseParser,
    Token,
    api_error,
    api_shaped,
    check_base_url,
    path,
    proxy_parts,
    retry_wait,
    token_form,
    token_from,
)

T = TypeVar("T")


class Client:
    """A client of one ``airlock serve``.

    ``api_key`` or ``client_credentials`` authenticate; with client
    credentials the access token is fetched, cached, and refreshed ahead of
    its expiry by one caller while concurrent callers wait (a lock). 429 and
    503 answers are retried ``retries`` times, waiting as ``Retry-After``
    says (at most ``max_retry_wait`` seconds).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        client_credentials: ClientCredentials | None = None,
        retries: int = 2,
        max_retry_wait: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        if api_key and client_credentials:
            raise ValueError("give api_key or client_credentials, not both")
        self.base_url = check_base_url(base_url)
        self._api_key = api_key
        self._creds = client_credentials
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)
        self._token: Token | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ---- transport ----

    def _bearer(self) -> str | None:
        if self._api_key:
            return self._api_key
        if self._creds is None:
            return None
        with self._lock:
            if self._token is None or not self._token.fresh():
                started = time.monotonic()
                try:
                    response = self._http.post("/v1/oauth/token", data=token_form(self._creds))
                except httpx.TransportError as e:
                    raise AirlockConnectionError(f"cannot reach {self.base_url}: {e}") from e
                self._token = token_from(response, started)
            return self._token.value

    def _send_raw(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        upstream: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        attempt, refreshed = 0, False
        while True:
            token = self._bearer()
            sent = dict(headers or {})
            if token:
                sent["authorization"] = f"Bearer {token}"
            try:
                request = self._http.build_request(method, url, headers=sent, **kwargs)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as e:
                raise AirlockConnectionError(f"cannot reach {self.base_url}: {e}") from e
            # A cached token the server refused: fetch a new one, once.
            # (Not through the proxy: there a 401 may be the upstream's.)
            if response.status_code == 401 and self._creds and not refreshed and not upstream:
                with self._lock:
                    if self._token is not None and self._token.value == token:
                        self._token = None
                refreshed = True
                response.close()
                continue
            wait = retry_wait(response, attempt, self._retries, self._max_retry_wait, upstream)
            if wait is not None:
                attempt += 1
                response.close()
                time.sleep(wait)
                continue
            return response

    def _call(self, call: r.Call[T]) -> T:
        response = self._send_raw(
            call.method, call.path, params=call.query, json=call.json, files=call.files, headers=call.headers
        )
        if response.is_error:
            raise api_error(response)
        return call.parse(response.json() if response.content else None)

    # ---- projects, keys, OAuth clients ----

    def list_projects(self) -> list[models.ProjectView]:
        return self._call(r.list_projects())

    def create_project(self, name: str) -> models.ProjectView:
        return self._call(r.create_project(name))

    def get_project(self, name: str) -> models.ProjectView:
        return self._call(r.get_project(name))

    def create_key(self, name: str, scopes: list[str], project: str | None = None) -> models.CreatedKey:
        return self._call(r.create_key(name, scopes, project))

    def create_oauth_client(self, name: str, scopes: list[str], project: str | None = None) -> models.CreatedClient:
        return self._call(r.create_oauth_client(name, scopes, project))

    # ---- accounts ----

    def create_account(
        self,
        project: str,
        *,
        app: str,
        external_user_id: str,
        credentials: dict[str, str],
        custom_fields: dict[str, str] | None = None,
    ) -> models.AccountView:
        return self._call(r.create_account(project, app, external_user_id, credentials, custom_fields))

    def list_accounts(
        self, project: str, *, external_user_id: str | None = None, app: str | None = None
    ) -> list[models.AccountView]:
        return self._call(r.list_accounts(project, external_user_id, app))

    def get_account(self, project: str, id: str) -> models.AccountView:
        return self._call(r.get_account(project, id))

    def delete_account(self, project: str, id: str) -> None:
        return self._call(r.delete_account(project, id))

    # ---- connect tokens ----

    def create_connect_token(self, project: str, external_user_id: str, **options: Any) -> models.CreatedConnectToken:
        """A short-lived, single-use link (``connect_link_url``) for one end
        user; ``options`` are the other fields of ``CreateConnectToken``."""
        return self._call(r.create_connect_token(project, {"external_user_id": external_user_id, **options}))

    def get_connect_token(self, project: str, id: str) -> models.ConnectTokenView:
        return self._call(r.get_connect_token(project, id))

    def delete_connect_token(self, project: str, id: str) -> None:
        return self._call(r.delete_connect_token(project, id))

    # ---- secrets, steps, runs ----

    def put_secret(self, project: str, name: str, value: str) -> models.PutOutcome:
        return self._call(r.put_secret(project, name, value))

    def put_step(self, project: str, step: str, component: bytes, manifest: str | None = None) -> models.UploadOutcome:
        return self._call(r.put_step(project, step, component, manifest))

    def run(self, project: str, step: str, input: Any, **options: Any) -> models.RunResult:
        """Runs the step's current version and waits for it."""
        return self._call(r.run(project, step, {"input": input, **options}))

    def queue_run(
        self, project: str, step: str, input: Any, *, idempotency_key: str | None = None, **options: Any
    ) -> models.QueuedRun:
        return self._call(r.queue_run(project, step, {"input": input, **options}, idempotency_key))

    def get_run(self, project: str, id: str) -> models.RunView:
        return self._call(r.get_run(project, id))

    def get_logs(self, project: str, id: str) -> models.RunLogs:
        return self._call(r.get_logs(project, id))

    def stream_logs(self, project: str, id: str) -> Iterator[LogLine | LogEnd]:
        """Follows a run's log until it ends (SSE), reopening a broken stream
        with ``Last-Event-ID`` so no line comes twice."""
        parser = SseParser()
        url = path("v1", "projects", project, "runs", id, "logs")
        for reopened in range(REOPEN + 1):
            if reopened:
                time.sleep(1)
            headers = {"accept": "text/event-stream"}
            if parser.last_id is not None:
                headers["last-event-id"] = parser.last_id
            response = self._send_raw("GET", url, stream=True, params={"follow": "1"}, headers=headers)
            try:
                if response.is_error:
                    response.read()
                    raise api_error(response)
                parser.buf = ""
                for text in response.iter_text():
                    for event in parser.feed(text):
                        yield event
                        if isinstance(event, LogEnd):
                            return
            except httpx.TransportError:
                pass  # a broken stream: opened again
            finally:
                response.close()
        raise AirlockError(f"the log stream of run {id} kept breaking before the run ended")

    # ---- the proxy ----

    def proxy(
        self,
        project: str,
        url: str,
        *,
        external_user_id: str,
        account_id: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> ProxyResponse:
        """Sends a request upstream with an end user's account; the server
        inserts the credential. ``url`` is a plain URL (or a path relative
        to the app's base URL). An error status in the API's own error shape
        is Airlock's refusal (raised); every other answer is the upstream's."""
        target, forwarded, body = proxy_parts(url, headers, json, content)
        response = self._send_raw(
            method,
            path("v1", "projects", project, "proxy", target),
            params={"external_user_id": external_user_id, "account_id": account_id},
            headers=forwarded,
            content=body,
            upstream=True,
        )
        if response.is_error and (e := api_shaped(response)) is not None:
            if response.status_code == 401:
                self._token = None  # the server refused it: the next call fetches a new one
            raise e
        return ProxyResponse(response.status_code, response.headers, response.content)
