"""The Python client against a real ``airlock serve`` (see conftest.py):
OAuth client credentials refreshed ahead of expiry and fetched once for
concurrent callers (sync threads and async tasks), typed errors with the
server's ``code``, 429s from the project's real outbound rate limit retried
after ``Retry-After``, the proxy round trip through a loopback upstream,
connect tokens.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airlock_client import (
    AirlockApiError,
    AirlockConnectionError,
    AsyncClient,
    Client,
    ClientCredentials,
    encode_target,
)


def expired_refusals(base: str, admin: str) -> int:
    """``airlock_auth_failures_total{reason="expired"}`` of the server."""
    text = httpx.get(f"{base}/metrics", headers={"authorization": f"Bearer {admin}"}).text
    for line in text.splitlines():
        if line.startswith('airlock_auth_failures_total{reason="expired"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def just_before_a_second() -> None:
    """Waits until the wall clock is 0.85 s into a second. The server counts
    a token's expiry in whole seconds from the second it was issued in, so a
    token fetched now lives only a little over ``ttl - 1`` seconds: a client
    that used it up to its nominal expiry would be refused."""
    time.sleep((0.85 - time.time() % 1) % 1)


def count_token_fetches(client: Client | AsyncClient) -> list[int]:
    """Counts the client's own requests to the token endpoint (the real
    server answers them), through httpx's event hooks."""
    count = [0]

    def hook(request: httpx.Request) -> None:
        if request.url.path == "/v1/oauth/token":
            count[0] += 1

    async def ahook(request: httpx.Request) -> None:
        hook(request)

    client._http.event_hooks["request"].append(ahook if isinstance(client, AsyncClient) else hook)
    return count


def test_client_credentials_are_refreshed_ahead_of_expiry_once_for_many_callers(start_airlock):
    airlock = start_airlock("--token-ttl-secs", "3")
    with Client(airlock.base, api_key=airlock.admin) as admin:
        created = admin.create_oauth_client("backend", ["runs:read"])
    creds = ClientCredentials(created.client_id, created.client_secret)
    with Client(airlock.base, client_credentials=creds) as client:
        fetches = count_token_fetches(client)
        just_before_a_second()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: client.list_projects(), range(16)))
        assert all(len(p) == 1 for p in results)
        assert fetches[0] == 1
        # 2.5 s on, the token is past the server's expiry (a little over
        # 2 s) though short of its nominal 3 s: refreshed ahead of expiry,
        # the client never sends it; then past a whole lifetime.
        for wait in (2.5, 3.5):
            time.sleep(wait)
            assert len(client.list_projects()) == 1
        assert fetches[0] == 3
    assert expired_refusals(airlock.base, airlock.admin) == 0

    with Client(airlock.base, client_credentials=ClientCredentials(created.client_id, "cs_wrong")) as wrong:
        with pytest.raises(AirlockApiError) as e:
            wrong.list_projects()
    assert (e.value.status, e.value.code) == (401, "invalid_client")


def test_the_async_client_shares_one_token_fetch_among_tasks(start_airlock):
    airlock = start_airlock("--token-ttl-secs", "3")
    with Client(airlock.base, api_key=airlock.admin) as admin:
        created = admin.create_oauth_client("backend", ["runs:read"])

    async def main() -> None:
        creds = ClientCredentials(created.client_id, created.client_secret)
        async with AsyncClient(airlock.base, client_credentials=creds) as client:
            fetches = count_token_fetches(client)
            just_before_a_second()
            results = await asyncio.gather(*(client.list_projects() for _ in range(16)))
            assert all(len(p) == 1 for p in results)
            assert fetches[0] == 1
            await asyncio.sleep(2.5)
            assert len(await client.list_projects()) == 1
            assert fetches[0] == 2

    asyncio.run(main())
    assert expired_refusals(airlock.base, airlock.admin) == 0


def test_errors_carry_the_servers_code(start_airlock):
    airlock = start_airlock()
    with Client(airlock.base, api_key=airlock.admin) as client:
        with pytest.raises(AirlockApiError) as e:
            client.get_run("alpha", "run_nosuch")
        assert (e.value.status, e.value.code) == (404, "not_found")
        reader = client.create_key("r", ["runs:read"], "alpha")
    with Client(airlock.base, api_key=reader.key) as limited:
        with pytest.raises(AirlockApiError) as e:
            limited.create_project("gamma")
        assert e.value.code == "forbidden"
    with Client(airlock.base, api_key="ak_0000000000000000_nope") as nobody:
        with pytest.raises(AirlockApiError) as e:
            nobody.list_projects()
        assert e.value.code == "unauthorized"
    airlock.stop()
    with Client(airlock.base, api_key=airlock.admin) as gone:
        with pytest.raises(AirlockConnectionError):
            gone.list_projects()


def _account(client: Client) -> str:
    return client.create_account(
        "alpha", app="echo", external_user_id="u1", credentials={"token": "upstream-tok-5d1e"}
    ).id


def test_the_proxy_takes_a_plain_url_and_round_trips(start_airlock, echo, echo_apps):
    airlock = start_airlock("--allow-range", "127.0.0.0/8", "--apps-dir", str(echo_apps))
    with Client(airlock.base, api_key=airlock.admin) as client:
        account = _account(client)
        assert [a.id for a in client.list_accounts("alpha", external_user_id="u1")] == [account]

        answer = client.proxy(
            "alpha",
            f"{echo.url}/v1/items?q=a b>?&r=é",
            external_user_id="u1",
            account_id=account,
            method="POST",
            headers={"x-trace": "t-1"},
            json={"n": 1},
        )
        assert answer.status == 200
        assert "upstream-tok-5d1e" not in answer.text
        seen = echo.seen[-1]
        url = urlsplit(seen["path"])
        assert seen["method"] == "POST"
        assert url.path == "/v1/items"
        assert parse_qs(url.query) == {"q": ["a b>?"], "r": ["é"]}
        assert seen["headers"]["x-trace"] == "t-1"
        assert seen["headers"]["authorization"] == "Bearer upstream-tok-5d1e"
        assert seen["body"] == '{"n":1}'

        client.proxy("alpha", "/rel/path", external_user_id="u1", account_id=account)
        assert echo.seen[-1]["path"] == "/rel/path"

        with pytest.raises(AirlockApiError) as e:
            client.proxy("alpha", "/x", external_user_id="u2", account_id=account)
        assert e.value.code == "not_found"
    assert encode_target("/a?>") == "L2E_Pg"


def test_rate_limited_calls_are_retried_after_retry_after(start_airlock, echo, echo_apps):
    # 300 outbound requests per 5 minutes: a burst of 300, then one a second.
    airlock = start_airlock(
        "--allow-range", "127.0.0.0/8", "--apps-dir", str(echo_apps), "--http-rate-limit", "300"
    )
    with Client(airlock.base, api_key=airlock.admin, retries=0) as once:
        account = _account(once)
        refused = None
        for _ in range(400):
            try:
                assert once.proxy("alpha", "/ping", external_user_id="u1", account_id=account).status == 200
            except AirlockApiError as e:
                refused = e
                break
    assert refused is not None, "the limit refuses within 400 calls"
    assert (refused.status, refused.code, refused.retry_after) == (429, "rate_limited", 1)
    # One call a second gets through; three in a row succeed only by waiting.
    with Client(airlock.base, api_key=airlock.admin, retries=3) as retrying:
        for _ in range(3):
            assert retrying.proxy("alpha", "/ping", external_user_id="u1", account_id=account).status == 200


def test_a_connect_tokens_link(start_airlock):
    airlock = start_airlock()

    async def main() -> None:
        async with AsyncClient(airlock.base, api_key=airlock.admin) as client:
            created = await client.create_connect_token("alpha", "u1")
            assert created.connect_link_url.endswith(f"/connect/{created.token}")
            token = await client.get_connect_token("alpha", created.id)
            assert token.status.value == "pending"
            await client.delete_connect_token("alpha", created.id)
            with pytest.raises(AirlockApiError) as e:
                await client.get_connect_token("alpha", created.id)
            assert e.value.status == 404

    asyncio.run(main())
