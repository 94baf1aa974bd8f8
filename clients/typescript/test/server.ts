/**
 * Starts a real `airlock serve` for a test: the binary from `AIRLOCK_BIN`
 * (default `target/debug/airlock` of the repository), a fresh data
 * directory, a test master key, `--listen 127.0.0.1:0`; an admin key made
 * with `airlock admin create-key` and the project `alpha`.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// dist/test -> the repository's root.
const repo = resolve(here, "..", "..", "..", "..");
export const BIN = process.env.AIRLOCK_BIN ?? join(repo, "target", "debug", "airlock");
/** The example step `hello`, built for wasm32-wasip2 by `cargo test` (tests/build.rs). */
export const HELLO_WASM =
  process.env.AIRLOCK_TEST_HELLO_WASM ?? join(repo, "examples", "target", "wasm32-wasip2", "release", "hello.wasm");
const MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

export interface Airlock {
  base: string;
  admin: string;
  dir: string;
  stop(): Promise<void>;
}

function env(dir: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, AIRLOCK_DATA: join(dir, "data"), AIRLOCK_MASTER_KEY: MASTER_KEY };
  for (const k of ["AIRLOCK_SERVER", "AIRLOCK_API_KEY", "AIRLOCK_PROJECT", "AIRLOCK_DATABASE_URL"]) delete e[k];
  return e;
}

export async function startAirlock(args: string[] = []): Promise<Airlock> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-ts-"));
  const child: ChildProcess = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", ...args], {
    env: env(dir),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const base = await new Promise<string>((ok, fail) => {
    child.once("error", fail);
    child.once("exit", (code) => fail(new Error(`airlock serve exited (${code}) before listening; is AIRLOCK_BIN=${BIN} built?`)));
    lines.once("line", (line) => {
      const m = /^listening on (\S+)/.exec(line);
      if (m) ok(m[1]);
      else fail(new Error(`airlock serve's first line: ${line}`));
    });
  });
  child.removeAllListeners("exit");
  const admin = execFileSync(BIN, ["admin", "create-key"], { env: env(dir) }).toString().trim();
  const res = await fetch(`${base}/v1/projects`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "alpha" }),
  });
  if (res.status !== 201) throw new Error(`creating project alpha: ${res.status} ${await res.text()}`);
  return {
    base,
    admin,
    dir,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback upstream that answers every request with what it received, as JSON. */
export interface Echo {
  url: string;
  seen: Array<{ method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }>;
  close(): Promise<void>;
}

export async function startEcho(): Promise<Echo> {
  const seen: Echo["seen"] = [];
  const server: HttpServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const record = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(record);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(record));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** An apps directory with a bearer app `echo` whose base URL is `upstream`. */
export function echoApp(upstream: string): string {
  const dir = mkdtempSync(join(tmpdir(), "airlock-apps-"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "echo.toml"),
    `slug = "echo"\nname = "echo"\nauth = "bearer"\nbase_url = "${upstream}"\n` +
      `allowed_domains = ["127.0.0.1"]\n[credential]\nheader = "Authorization"\ntemplate = "Bearer {{token}}"\n`,
  );
  return dir;
}
