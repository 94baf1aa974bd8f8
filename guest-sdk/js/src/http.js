// Outbound HTTP, made by the host on the step's behalf.
//
//   // As the run's end user: the host inserts their GitHub token.
//   const repos = http.get("/user/repos").account("github").send().json();
//
//   // With a secret handle as a bearer token, never reading it.
//   const key = secrets.get("API_KEY");
//   const resp = http.post("https://api.example.com/v1/items").bearer(key).json({ name: "x" }).send();
//   if (resp.status >= 400) throw new StepError(`upstream said ${resp.status}`);
//
// The host checks every request against the step's manifest grants and its
// egress policy; see the README's "Outbound HTTP" section.

import {
  send as witSend,
  sendAwsSigv4 as witSendAwsSigv4,
  sendDigest as witSendDigest,
} from "airlock:step/http@0.1.0";
import { StepError, payloadOf } from "./error.js";
import { Secret } from "./secrets.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Why a request failed. `kind` (also the `code`): denied, invalid_request,
 * timeout, too_large, connection_failed, credential_unusable, rate_limited
 * (with `retryAfterMs`), or body (serialising or parsing a body). */
export class HttpError extends StepError {
  constructor(kind, message, retryAfterMs) {
    super(`${kind.replaceAll("_", " ")}: ${message}`, { code: kind });
    this.name = "HttpError";
    this.kind = kind;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

function fromWit(e) {
  const p = payloadOf(e);
  if (p && typeof p === "object" && typeof p.tag === "string") {
    const kind = p.tag.replaceAll("-", "_");
    if (kind === "rate_limited") {
      const ms = Number(p.val);
      return new HttpError(kind, `retry after ${ms} ms`, ms);
    }
    return new HttpError(kind, String(p.val));
  }
  return new HttpError("connection_failed", String(p));
}

/** A complete response (masked by the host before the step sees it). */
export class Response {
  constructor(status, headers, body) {
    /** @type {number} */
    this.status = status;
    /** @type {Array<[string, string]>} in the order received */
    this.headers = headers;
    /** @type {Uint8Array} */
    this.body = body;
  }

  /** The first header of that name (case-insensitive), or null. */
  header(name) {
    const lower = String(name).toLowerCase();
    const found = this.headers.find(([n]) => n.toLowerCase() === lower);
    return found ? found[1] : null;
  }

  /** The body as UTF-8 text (invalid bytes replaced). */
  text() {
    return decoder.decode(this.body);
  }

  /** The body parsed as JSON; HttpError of kind `body` if it is not. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new HttpError("body", `the response is not JSON: ${e.message}`);
    }
  }
}

/** A request being built. Nothing is sent until `send()`. */
export class RequestBuilder {
  #method;
  #url;
  #headers = [];
  #body;
  #timeoutMs;
  #auth;

  constructor(method, url) {
    this.#method = method;
    this.#url = String(url);
  }

  /** Adds a header. Credentials are the host's job: `authorization` and
   * other restricted headers are refused. */
  header(name, value) {
    this.#headers.push({ name: String(name), value: String(value) });
    return this;
  }

  /** Sends `body` (a string as UTF-8, or bytes) as the raw body. */
  body(body) {
    this.#body = typeof body === "string" ? encoder.encode(body) : new Uint8Array(body);
    return this;
  }

  /** Sends `value` as JSON, with `content-type: application/json`. */
  json(value) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new HttpError("body", `the request body is not serialisable: ${e.message}`);
    }
    this.#body = encoder.encode(text ?? "null");
    this.#headers.push({ name: "content-type", value: "application/json" });
    return this;
  }

  /** Total timeout in milliseconds (never beyond the run's wall time). */
  timeout(ms) {
    this.#timeoutMs = Math.max(0, Math.min(Math.floor(ms), 2 ** 32 - 1));
    return this;
  }

  /** As the run's end user: their connected account of this app (a slug such
   * as "github") or an account id ("acc_..."). The URL may then be a path
   * relative to the app's base URL. */
  account(appOrId) {
    this.#auth = { tag: "account", val: String(appOrId) };
    return this;
  }

  /** `Authorization: Bearer <secret>`, inserted by the host. */
  bearer(secret) {
    this.#auth = { tag: "bearer", val: Secret.handleOf(secret) };
    return this;
  }

  /** `Authorization: Basic base64(username:secret)`, inserted by the host. */
  basic(username, password) {
    this.#auth = { tag: "basic", val: { username: String(username), password: Secret.handleOf(password) } };
    return this;
  }

  /** A header whose value is the secret, inserted by the host. */
  secretHeader(name, secret) {
    this.#auth = { tag: "header", val: { name: String(name), secret: Secret.handleOf(secret) } };
    return this;
  }

  /** A query parameter whose value is the secret, inserted by the host. */
  secretQuery(name, secret) {
    this.#auth = { tag: "query", val: { name: String(name), secret: Secret.handleOf(secret) } };
    return this;
  }

  /** Signed by the host with AWS Signature V4 over the final request (every
   * header set here, the exact body). `secretKey` (and `sessionToken`) are
   * secret handles; the key never leaves the host. */
  awsSigV4({ accessKeyId, secretKey, region, service, sessionToken }) {
    this.#auth = {
      tag: "aws-sigv4",
      val: {
        accessKeyId: String(accessKeyId),
        secretKey: Secret.handleOf(secretKey),
        sessionToken: sessionToken == null ? undefined : Secret.handleOf(sessionToken),
        region: String(region),
        service: String(service),
      },
    };
    return this;
  }

  /** HTTP Digest (RFC 7616): the host answers the server's challenge with
   * the password, a secret handle. */
  digest(username, password) {
    this.#auth = { tag: "digest", val: { username: String(username), password: Secret.handleOf(password) } };
    return this;
  }

  /** Sends the request and waits for the whole response; throws HttpError. */
  send() {
    let r;
    const signed = this.#auth && (this.#auth.tag === "aws-sigv4" || this.#auth.tag === "digest");
    const request = {
      method: this.#method,
      url: this.#url,
      headers: this.#headers,
      body: this.#body,
      timeoutMs: this.#timeoutMs,
      auth: signed ? undefined : this.#auth,
    };
    try {
      if (!signed) {
        r = witSend(request);
      } else if (this.#auth.tag === "aws-sigv4") {
        r = witSendAwsSigv4(request, this.#auth.val);
      } else {
        r = witSendDigest(request, this.#auth.val);
      }
    } catch (e) {
      throw fromWit(e);
    }
    return new Response(r.status, r.headers.map((h) => [h.name, h.value]), r.body);
  }
}

export const request = (method, url) => new RequestBuilder(String(method).toUpperCase(), url);
export const get = (url) => new RequestBuilder("GET", url);
export const post = (url) => new RequestBuilder("POST", url);
export const put = (url) => new RequestBuilder("PUT", url);
export const patch = (url) => new RequestBuilder("PATCH", url);
// `delete` is a keyword: exported under its name all the same (`http.delete(url)`).
const del = (url) => new RequestBuilder("DELETE", url);
export { del as delete };
