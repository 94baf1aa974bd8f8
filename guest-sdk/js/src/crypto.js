// HMAC keyed by a secret handle: sign without reading the key.

import { hmac as witHmac } from "airlock:step/crypto@0.1.0";
import { Secret } from "./secrets.js";

const encoder = new TextEncoder();
const ALGORITHMS = new Set(["sha256", "sha512", "sha1"]);

function bytes(data) {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("HMAC data must be a string, Uint8Array or ArrayBuffer");
}

/**
 * HMAC of `data` (a string as UTF-8, or bytes) keyed by `key`'s value; the
 * raw MAC as a Uint8Array. `algorithm`: "sha256", "sha512" or "sha1"
 * (legacy schemes only).
 */
export function hmac(algorithm, key, data) {
  if (!ALGORITHMS.has(algorithm)) {
    throw new TypeError(`unknown HMAC algorithm ${JSON.stringify(algorithm)}: use sha256, sha512 or sha1`);
  }
  return witHmac(algorithm, Secret.handleOf(key), bytes(data));
}

export const hmacSha256 = (key, data) => hmac("sha256", key, data);
export const hmacSha512 = (key, data) => hmac("sha512", key, data);
export const hmacSha1 = (key, data) => hmac("sha1", key, data);

/** Lowercase hex, for signatures in headers. */
export function toHex(mac) {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}
