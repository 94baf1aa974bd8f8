/**
 * examples/backend.ts against a real `airlock serve`: a connect link, the
 * end user's accounts, a proxy call through a loopback upstream, and a run
 * of the example step `hello` with its streamed log.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { AirlockClient } from "../src/index.js";
import { HELLO_WASM, echoApp, startAirlock, startEcho } from "./server.js";

const example = join(dirname(fileURLToPath(import.meta.url)), "..", "examples", "backend.js");

test("examples/backend.ts", async () => {
  const echo = await startEcho();
  const airlock = await startAirlock(["--allow-range", "127.0.0.0/8", "--apps-dir", echoApp(echo.url)]);
  try {
    const admin = new AirlockClient({ baseUrl: airlock.base, auth: { apiKey: airlock.admin } });
    const account = await admin.createAccount("alpha", { app: "echo", external_user_id: "u1", credentials: { token: "t-1" } });
    await admin.putStep("alpha", "hello", readFileSync(HELLO_WASM));
    const backend = await admin.createOAuthClient({
      name: "backend",
      scopes: ["accounts:read", "accounts:write", "proxy", "runs:read", "runs:write"],
      project: "alpha",
    });
    const { stdout } = await promisify(execFile)(process.execPath, [example, "alpha", "u1", `${echo.url}/me`, "hello"], {
      env: { ...process.env, AIRLOCK_SERVER: airlock.base, AIRLOCK_CLIENT_ID: backend.client_id, AIRLOCK_CLIENT_SECRET: backend.client_secret },
    });
    assert.match(stdout, new RegExp(`^connect link: ${airlock.base}/connect/\\S+$`, "m"));
    assert.match(stdout, new RegExp(`^account ${account.id} \\(echo, healthy\\)$`, "m"));
    assert.match(stdout, /^proxy: 200 \{/m);
    assert.equal(echo.seen.at(-1)!.url, "/me");
    assert.match(stdout, /^\s+\d+ms greeting u1$/m);
    assert.match(stdout, /^run \S+ succeeded$/m);
  } finally {
    await airlock.stop();
    await echo.close();
  }
});
