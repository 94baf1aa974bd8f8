/**
 * The TypeScript client against a real `airlock serve` (see server.ts):
 * OAuth client credentials refreshed ahead of expiry and fetched once for
 * concurrent callers, typed errors with the server's `code`, 429s from the
 * project's real outbound rate limit retried after `Retry-After`, the
 * proxy round trip through a loopback upstream, connect tokens.
 */
import { test } from "node:test";
import assert from "node:assert/strict";

import { AirlockApiError, AirlockClient, AirlockConnectionError, encodeTarget } from "../src/index.js";
import { echoApp, startAirlock, startEcho } from "./server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `airlock_auth_failures_total{reason="expired"}` of the server. */
async function expiredRefusals(base: string, admin: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
  const line = text.split("\n").find((l) => l.startsWith('airlock_auth_failures_total{reason="expired"}'));
  return line ? Number(line.split(" ").pop()) : 0;
}

/**
 * Waits until the wall clock is 0.85 s into a second. The server counts a
 * token's expiry in whole seconds from the second it was issued in, so a
 * token fetched now lives only a little over `ttl - 1` seconds: a client
 * that used it up to its nominal expiry would be refused.
 */
async function justBeforeASecond(): Promise<void> {
  await sleep((850 - (Date.now() % 1000) + 1000) % 1000);
}

/** Counts the client's own requests to the token endpoint (the real server answers them). */
function countTokenFetches(): { count: () => number; restore: () => void } {
  const original = globalThis.fetch;
  let n = 0;
  globalThis.fetch = (input, init) => {
    if (String(input).endsWith("/v1/oauth/token")) n++;
    return original(input, init);
  };
  return { count: () => n, restore: () => (globalThis.fetch = original) };
}

test("client credentials are refreshed ahead of expiry, once for many callers", async () => {
  const airlock = await startAirlock(["--token-ttl-secs", "3"]);
  const counter = countTokenFetches();
  try {
    const admin = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
    const created = await admin.createOAuthClient({ name: "backend", scopes: ["runs:read"] });
    const client = new AirlockClient({
      baseUrl: airlock.base,
      auth: { clientId: created.client_id, clientSecret: created.client_secret },
    });
    await justBeforeASecond();
    const all = await Promise.all(Array.from({ length: 16 }, () => client.listProjects()));
    assert.ok(all.every((p) => p.length === 1));
    assert.equal(counter.count(), 1);
    // 2.5 s on, the token is past the server's expiry (a little over 2 s)
    // though short of its nominal 3 s: refreshed ahead of expiry, the client
    // never sends it; then past a whole lifetime.
    for (const wait of [2500, 3500]) {
      await sleep(wait);
      assert.equal((await client.listProjects()).length, 1);
    }
    assert.equal(counter.count(), 3);
    assert.equal(await expiredRefusals(airlock.base, airlock.admin), 0);

    const wrong = new AirlockClient({ baseUrl: airlock.base, auth: { clientId: created.client_id, clientSecret: "cs_wrong" } });
    await assert.rejects(wrong.listProjects(), (e: unknown) => {
      assert.ok(e instanceof AirlockApiError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "invalid_client");
      return true;
    });
  } finally {
    counter.restore();
    await airlock.stop();
  }
});

test("errors carry the server's code", async () => {
  const airlock = await startAirlock();
  try {
    const client = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
    await assert.rejects(client.getRun("alpha", "run_nosuch"), (e: unknown) => {
      assert.ok(e instanceof AirlockApiError);
      assert.equal(e.status, 404);
      assert.equal(e.code, "not_found");
      return true;
    });
    const reader = await client.createKey({ name: "r", scopes: ["runs:read"], project: "alpha" });
    const limited = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: reader.key } });
    await assert.rejects(limited.createProject("gamma"), (e: unknown) => e instanceof AirlockApiError && e.code === "forbidden");
    const nobody = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: "ak_0000000000000000_nope" } });
    await assert.rejects(nobody.listProjects(), (e: unknown) => e instanceof AirlockApiError && e.code === "unauthorized");
  } finally {
    await airlock.stop();
  }
  // The server is gone: no answer at all.
  const gone = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
  await assert.rejects(gone.listProjects(), (e: unknown) => e instanceof AirlockConnectionError);
});

async function proxyWorld(extra: string[] = []) {
  const echo = await startEcho();
  const airlock = await startAirlock(["--allow-range", "127.0.0.0/8", "--apps-dir", echoApp(echo.url), ...extra]);
  const client = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
  const account = await client.createAccount("alpha", {
    app: "echo",
    external_user_id: "u1",
    credentials: { token: "upstream-tok-5d1e" },
  });
  return { echo, airlock, client, account };
}

test("the proxy takes a plain URL and round-trips", async () => {
  const { echo, airlock, client, account } = await proxyWorld();
  try {
    const accounts = await client.listAccounts("alpha", { externalUserId: "u1" });
    assert.deepEqual(accounts.map((a) => a.id), [account.id]);

    const answer = await client.proxy("alpha", {
      url: `${echo.url}/v1/items?q=a b>?&r=é`,
      externalUserId: "u1",
      accountId: account.id,
      method: "POST",
      headers: { "x-trace": "t-1" },
      body: { n: 1 },
    });
    assert.equal(answer.status, 200);
    assert.ok(!answer.text().includes("upstream-tok-5d1e"), "the credential is masked in the answer");
    const seen = echo.seen.at(-1)!;
    assert.equal(seen.method, "POST");
    const url = new URL(seen.url, echo.url);
    assert.equal(url.pathname, "/v1/items");
    assert.equal(url.searchParams.get("q"), "a b>?");
    assert.equal(url.searchParams.get("r"), "é");
    assert.equal(seen.headers["x-trace"], "t-1");
    assert.equal(seen.headers.authorization, "Bearer upstream-tok-5d1e");
    assert.equal(seen.body, '{"n":1}');

    await client.proxy("alpha", { url: "/rel/path", externalUserId: "u1", accountId: account.id });
    assert.equal(echo.seen.at(-1)!.url, "/rel/path");

    // Airlock's own refusal is thrown: the account is another user's.
    await assert.rejects(
      client.proxy("alpha", { url: "/x", externalUserId: "u2", accountId: account.id }),
      (e: unknown) => e instanceof AirlockApiError && e.code === "not_found",
    );
    assert.equal(encodeTarget("/a?>"), "L2E_Pg");
  } finally {
    await airlock.stop();
    await echo.close();
  }
});

test("rate-limited calls are retried after Retry-After", async () => {
  // 300 outbound requests per 5 minutes: a burst of 300, then one a second.
  const { echo, airlock, account } = await proxyWorld(["--http-rate-limit", "300"]);
  try {
    const once = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin }, retries: 0 });
    const req = { url: "/ping", externalUserId: "u1", accountId: account.id };
    let refused: unknown;
    for (let i = 0; i < 400 && !refused; i++) {
      try {
        assert.equal((await once.proxy("alpha", req)).status, 200);
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(refused instanceof AirlockApiError, `the limit refuses within 400 calls: ${refused}`);
    assert.equal(refused.status, 429);
    assert.equal(refused.code, "rate_limited");
    assert.equal(refused.retryAfter, 1);
    // One call a second gets through; three in a row succeed only by waiting.
    const retrying = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin }, retries: 3 });
    for (let i = 0; i < 3; i++) assert.equal((await retrying.proxy("alpha", req)).status, 200);
  } finally {
    await airlock.stop();
    await echo.close();
  }
});

test("a connect token's link", async () => {
  const airlock = await startAirlock();
  try {
    const client = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
    const created = await client.createConnectToken("alpha", { external_user_id: "u1" });
    assert.ok(created.connect_link_url.endsWith(`/connect/${created.token}`), created.connect_link_url);
    const token = await client.getConnectToken("alpha", created.id);
    assert.equal(token.status, "pending");
    await client.deleteConnectToken("alpha", created.id);
    await assert.rejects(client.getConnectToken("alpha", created.id), (e: unknown) => e instanceof AirlockApiError && e.status === 404);
  } finally {
    await airlock.stop();
  }
});
