/**
 * A typed client for the REST API of `airlock serve`.
 *
 * - Auth: an API key, or OAuth client credentials whose access token is
 *   fetched from `POST /v1/oauth/token`, cached, and refreshed ahead of its
 *   expiry (half its lifetime, at most a minute) by one request shared by
 *   every concurrent caller.
 * - Errors: an error answer throws `AirlockApiError` with the server's
 *   `code`, `status` and `retryAfter`; no answer at all throws
 *   `AirlockConnectionError`.
 * - Retries: 429 and 503 (refused before anything ran) are retried, waiting
 *   as `Retry-After` says (capped by `maxRetryWait`), else with backoff;
 *   through the proxy only 429 (a 503 there may be the upstream's, after it
 *   acted).
 * - `proxy()` takes a plain URL and does the route's encoding itself.
 * - `streamLogs()` yields a run's log lines as they are written (SSE),
 *   reopening a broken stream with `Last-Event-ID`.
 *
 * Model types are generated from docs/openapi.json into `schema.d.ts`.
 */
import type { components, paths } from "./schema.js";

export type { components, paths };
export type Schemas = components["schemas"];
export type Project = Schemas["ProjectView"];
export type Account = Schemas["AccountView"];
export type CreateAccount = Schemas["CreateAccount"];
export type CreateConnectToken = Schemas["CreateConnectToken"];
export type CreatedConnectToken = Schemas["CreatedConnectToken"];
export type ConnectToken = Schemas["ConnectTokenView"];
export type RunRequest = Schemas["RunRequest"];
export type RunResult = Schemas["RunResult"];
export type QueuedRun = Schemas["QueuedRun"];
export type Run = Schemas["RunView"];
export type UploadOutcome = Schemas["UploadOutcome"];
export type CreateCredential = Schemas["CreateCredential"];
export type CreatedClient = Schemas["CreatedClient"];

/** One log line of a run (the engine's shape). */
export interface LogLine {
  source: "log" | "stdout" | "stderr" | string;
  level?: string;
  elapsed_ms: number;
  text: string;
}

/** What `streamLogs()` yields. */
export type LogEvent =
  | { type: "line"; id: string | undefined; line: LogLine }
  | { type: "end"; status: string };

export type Auth =
  | { apiKey: string }
  | { clientId: string; clientSecret: string; scope?: string };

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  auth?: Auth;
  /** Retries of a 429 or 503 answer (default 2; 0 turns them off). */
  retries?: number;
  /** The longest `Retry-After` waited for, in ms (default 30000). */
  maxRetryWait?: number;
}

/** An error answer of the server. */
export class AirlockApiError extends Error {
  constructor(
    readonly status: number,
    /** The server's stable code (`not_found`, `rate_limited`, `invalid_client`, …); undefined for a body not in the API's shape. */
    readonly code: string | undefined,
    message: string,
    /** `Retry-After` in seconds, on 429 and 503. */
    readonly retryAfter: number | undefined,
  ) {
    super(`${message} (${status})`);
    this.name = "AirlockApiError";
  }
}

/** No answer: nothing listens, or the connection broke. */
export class AirlockConnectionError extends Error {
  constructor(readonly server: string, cause: unknown) {
    super(`cannot reach ${server}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "AirlockConnectionError";
  }
}

/** The upstream's answer through the proxy. */
export interface ProxyResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text(): string;
  json<T = unknown>(): T;
}

export interface ProxyRequest {
  /** A full URL or a path relative to the app's base URL. */
  url: string;
  externalUserId: string;
  accountId: string;
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Headers for the upstream, by their own names. */
  headers?: Record<string, string>;
  /** A string or bytes as is; any other value is sent as JSON. */
  body?: unknown;
}

/** The prefix that marks a header for the upstream. */
export const FORWARD_PREFIX = "x-airlock-proxy-";
const BASE_BACKOFF_MS = 250;

/** How long before expiry a token of lifetime `ttlMs` is replaced. */
export function refreshMargin(ttlMs: number): number {
  return Math.min(ttlMs / 2, 60_000);
}

/** `url` as the proxy route's path segment: URL-safe base64 without padding. */
export function encodeTarget(url: string): string {
  return Buffer.from(url, "utf8").toString("base64url");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryAfter(headers: Headers): number | undefined {
  const v = headers.get("retry-after");
  if (v === null || !/^\s*\d+\s*$/.test(v)) return undefined;
  return Number(v);
}

/** The error of an answer: the API's `{error: {code, message}}`, the token endpoint's RFC 6749 shape, or neither. */
function apiError(status: number, headers: Headers, text: string): AirlockApiError {
  const after = retryAfter(headers);
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "object" && typeof body.error?.code === "string") {
      return new AirlockApiError(status, body.error.code, String(body.error.message), after);
    }
    if (body && typeof body.error === "string") {
      return new AirlockApiError(status, body.error, String(body.error_description ?? body.error), after);
    }
  } catch {
    // not JSON: below
  }
  return new AirlockApiError(status, undefined, text.trim().slice(0, 200) || `HTTP ${status}`, after);
}

/** The API's own error shape, or undefined. */
function apiShaped(status: number, headers: Headers, text: string): AirlockApiError | undefined {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "object" && typeof body.error?.code === "string") {
      return new AirlockApiError(status, body.error.code, String(body.error.message), retryAfter(headers));
    }
  } catch {
    // not JSON
  }
  return undefined;
}

type Query = Record<string, string | number | boolean | undefined>;

interface Send {
  method: string;
  path: string[];
  query?: Query;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** The answer may be an upstream's (the proxy): a 401 is not taken for the token's refusal, and only 429 is retried (an upstream's 503 may come after it acted). */
  upstream?: boolean;
}

export class AirlockClient {
  readonly baseUrl: string;
  private readonly auth?: Auth;
  private readonly retries: number;
  private readonly maxRetryWait: number;
  private token?: { value: string; refreshAt: number };
  private fetching?: Promise<string>;

  constructor(options: ClientOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`invalid server URL ${options.baseUrl}: the scheme must be http or https`);
    }
    if (url.username || url.password) {
      throw new TypeError("put no credentials in the server URL");
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.auth = options.auth;
    this.retries = options.retries ?? 2;
    this.maxRetryWait = options.maxRetryWait ?? 30_000;
  }

  // ---- transport ----

  /** The bearer token for the next request: cached, or fetched once for all callers. */
  private async bearer(): Promise<string | undefined> {
    const auth = this.auth;
    if (!auth) return undefined;
    if ("apiKey" in auth) return auth.apiKey;
    if (this.token && Date.now() < this.token.refreshAt) return this.token.value;
    this.fetching ??= this.fetchToken(auth).finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async fetchToken(auth: { clientId: string; clientSecret: string; scope?: string }): Promise<string> {
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: auth.clientId,
      client_secret: auth.clientSecret,
    });
    if (auth.scope) form.set("scope", auth.scope);
    const started = Date.now();
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/v1/oauth/token`, { method: "POST", body: form });
    } catch (e) {
      throw new AirlockConnectionError(this.baseUrl, e);
    }
    const text = await res.text();
    if (res.status !== 200) throw apiError(res.status, res.headers, text);
    const body = JSON.parse(text) as Schemas["TokenResponse"];
    const ttl = body.expires_in * 1000;
    this.token = { value: body.access_token, refreshAt: started + ttl - refreshMargin(ttl) };
    return body.access_token;
  }

  private url(path: string[], query?: Query): string {
    for (const s of path) {
      if (s === "" || s === "." || s === "..") throw new TypeError(`${JSON.stringify(s)} is not a valid name or id`);
    }
    let url = `${this.baseUrl}/${path.map(encodeURIComponent).join("/")}`;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    if (qs) url += `?${qs}`;
    return url;
  }

  /** Sends with the credential and the retries; the last answer, whatever its status. */
  private async sendRaw(req: Send): Promise<Response> {
    const url = this.url(req.path, req.query);
    let refreshed = false;
    for (let attempt = 0; ; ) {
      const token = await this.bearer();
      const headers: Record<string, string> = { ...req.headers };
      if (token) headers.authorization = `Bearer ${token}`;
      let body = req.body;
      if (req.json !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(req.json);
      }
      let res: Response;
      try {
        res = await fetch(url, { method: req.method, headers, body });
      } catch (e) {
        throw new AirlockConnectionError(this.baseUrl, e);
      }
      // A cached token the server refused: fetch a new one, once.
      if (res.status === 401 && !req.upstream && !refreshed && this.auth && !("apiKey" in this.auth) && this.token?.value === token) {
        this.token = undefined;
        refreshed = true;
        await res.body?.cancel();
        continue;
      }
      if ((res.status === 429 || (res.status === 503 && !req.upstream)) && attempt < this.retries) {
        const after = retryAfter(res.headers);
        const wait = after !== undefined ? after * 1000 : BASE_BACKOFF_MS * 2 ** attempt;
        if (wait <= this.maxRetryWait) {
          attempt++;
          await res.body?.cancel();
          await sleep(wait);
          continue;
        }
      }
      return res;
    }
  }

  private async send(req: Send): Promise<Response> {
    const res = await this.sendRaw(req);
    if (res.ok) return res;
    throw apiError(res.status, res.headers, await res.text());
  }

  private async json<T>(req: Send): Promise<T> {
    return (await (await this.send(req)).json()) as T;
  }

  private async empty(req: Send): Promise<void> {
    await (await this.send(req)).body?.cancel();
  }

  // ---- projects ----

  async listProjects(): Promise<Project[]> {
    return (await this.json<Schemas["ProjectList"]>({ method: "GET", path: ["v1", "projects"] })).projects;
  }

  async createProject(name: string): Promise<Project> {
    return this.json({ method: "POST", path: ["v1", "projects"], json: { name } });
  }

  async getProject(name: string): Promise<Project> {
    return this.json({ method: "GET", path: ["v1", "projects", name] });
  }

  // ---- API keys and OAuth clients ----

  async createKey(body: CreateCredential): Promise<Schemas["CreatedKey"]> {
    return this.json({ method: "POST", path: ["v1", "keys"], json: body });
  }

  async createOAuthClient(body: CreateCredential): Promise<CreatedClient> {
    return this.json({ method: "POST", path: ["v1", "oauth", "clients"], json: body });
  }

  // ---- accounts ----

  async createAccount(project: string, body: CreateAccount): Promise<Account> {
    return this.json({ method: "POST", path: ["v1", "projects", project, "accounts"], json: body });
  }

  /** A project's accounts, newest first; filter by `externalUserId` and `app`. */
  async listAccounts(project: string, filter: { externalUserId?: string; app?: string } = {}): Promise<Account[]> {
    const list = await this.json<Schemas["AccountList"]>({
      method: "GET",
      path: ["v1", "projects", project, "accounts"],
      query: { external_user_id: filter.externalUserId, app: filter.app },
    });
    return list.accounts;
  }

  async getAccount(project: string, id: string): Promise<Account> {
    return this.json({ method: "GET", path: ["v1", "projects", project, "accounts", id] });
  }

  async deleteAccount(project: string, id: string): Promise<void> {
    return this.empty({ method: "DELETE", path: ["v1", "projects", project, "accounts", id] });
  }

  // ---- connect tokens ----

  /** A short-lived, single-use link (`connect_link_url`) to send one end user to. */
  async createConnectToken(project: string, body: CreateConnectToken): Promise<CreatedConnectToken> {
    return this.json({ method: "POST", path: ["v1", "projects", project, "connect", "tokens"], json: body });
  }

  async getConnectToken(project: string, id: string): Promise<ConnectToken> {
    return this.json({ method: "GET", path: ["v1", "projects", project, "connect", "tokens", id] });
  }

  async deleteConnectToken(project: string, id: string): Promise<void> {
    return this.empty({ method: "DELETE", path: ["v1", "projects", project, "connect", "tokens", id] });
  }

  // ---- secrets ----

  async putSecret(project: string, name: string, value: string): Promise<Schemas["PutOutcome"]> {
    return this.json({ method: "PUT", path: ["v1", "projects", project, "secrets", name], json: { value } });
  }

  // ---- steps and runs ----

  /** Uploads a step version (a component and an optional manifest) and makes it current. */
  async putStep(project: string, step: string, component: Uint8Array, manifest?: string): Promise<UploadOutcome> {
    const form = new FormData();
    form.append("component", new Blob([component as Uint8Array<ArrayBuffer>], { type: "application/wasm" }), "component.wasm");
    if (manifest !== undefined) form.append("manifest", new Blob([manifest], { type: "text/plain" }));
    return this.json({ method: "PUT", path: ["v1", "projects", project, "steps", step], body: form });
  }

  /** Runs the step's current version and waits for it. */
  async run(project: string, step: string, body: RunRequest): Promise<RunResult> {
    return this.json({ method: "POST", path: ["v1", "projects", project, "steps", step, "runs"], json: body });
  }

  /** Queues a run (`Prefer: respond-async`); `idempotencyKey` makes a retry return the same run. */
  async queueRun(project: string, step: string, body: RunRequest, idempotencyKey?: string): Promise<QueuedRun> {
    const headers: Record<string, string> = { prefer: "respond-async" };
    if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
    return this.json({ method: "POST", path: ["v1", "projects", project, "steps", step, "runs"], json: body, headers });
  }

  async getRun(project: string, id: string): Promise<Run> {
    return this.json({ method: "GET", path: ["v1", "projects", project, "runs", id] });
  }

  /** A run's log lines so far and its status. */
  async getLogs(project: string, id: string): Promise<Schemas["RunLogs"]> {
    return this.json({ method: "GET", path: ["v1", "projects", project, "runs", id, "logs"] });
  }

  /** Follows a run's log until it ends (SSE `…/logs?follow=1`), reopening a broken stream up to 5 times. */
  async *streamLogs(project: string, id: string): AsyncGenerator<LogEvent> {
    let last: string | undefined;
    for (let reopened = 0; reopened <= 5; reopened++) {
      if (reopened > 0) await sleep(1000);
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (last !== undefined) headers["last-event-id"] = last;
      const res = await this.send({ method: "GET", path: ["v1", "projects", project, "runs", id, "logs"], query: { follow: 1 }, headers });
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, "\n");
          if (buf.length > 4 << 20) throw new Error("the server sent an event larger than 4 MiB");
          let end: number;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let event = "";
            let eid: string | undefined;
            const data: string[] = [];
            for (const line of block.split("\n")) {
              const i = line.indexOf(":");
              const field = i < 0 ? line : line.slice(0, i);
              let value = i < 0 ? "" : line.slice(i + 1);
              if (value.startsWith(" ")) value = value.slice(1);
              if (field === "event") event = value;
              else if (field === "id") eid = value;
              else if (field === "data") data.push(value);
            }
            if (event === "log") {
              if (eid !== undefined) last = eid;
              yield { type: "line", id: eid, line: JSON.parse(data.join("\n")) as LogLine };
            } else if (event === "end") {
              const end = JSON.parse(data.join("\n") || "{}") as { status?: string };
              yield { type: "end", status: end.status ?? "unknown" };
              return;
            }
          }
        }
      } catch (e) {
        if (e instanceof Error && e.message.startsWith("the server sent")) throw e;
        // a broken stream: opened again below
      }
    }
    throw new Error(`the log stream of run ${id} kept breaking before the run ended`);
  }

  // ---- the proxy ----

  /**
   * Sends a request upstream with an end user's account; the server inserts
   * the credential. An error status in the API's own error shape is Airlock's
   * refusal (thrown); every other answer is the upstream's, returned.
   */
  async proxy(project: string, req: ProxyRequest): Promise<ProxyResponse> {
    if (!req.url) throw new TypeError("the proxy URL is empty");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers ?? {})) headers[FORWARD_PREFIX + name.toLowerCase()] = value;
    let body: BodyInit | undefined;
    if (typeof req.body === "string" || req.body instanceof Uint8Array) {
      body = req.body as BodyInit;
    } else if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers[FORWARD_PREFIX + "content-type"] ??= "application/json";
    }
    const res = await this.sendRaw({
      method: req.method ?? "GET",
      path: ["v1", "projects", project, "proxy", encodeTarget(req.url)],
      query: { external_user_id: req.externalUserId, account_id: req.accountId },
      headers,
      body,
      upstream: true,
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const text = () => new TextDecoder().decode(bytes);
    if (res.status >= 400) {
      const e = apiShaped(res.status, res.headers, text());
      if (e) {
        // The server refused the token itself: the next call fetches a new one.
        if (res.status === 401) this.token = undefined;
        throw e;
      }
    }
    return { status: res.status, headers: res.headers, body: bytes, text, json: <T>() => JSON.parse(text()) as T };
  }
}
