// The error a step returns: `{message, code?, details?, retryable?, retry_after_ms?}`.

export class StepError extends Error {
  /**
   * @param {string} message what went wrong, for a person
   * @param {{code?: string, details?: unknown, retryable?: boolean,
   *   retryAfterMs?: number}} [options] a machine-readable code
   *   (`"not_found"`), any JSON-serialisable details, and whether the failure
   *   is temporary: a queued run whose manifest's `[retry]` policy retries
   *   `"error"` is tried again after its backoff, no sooner than
   *   `retryAfterMs` when given (which implies `retryable`)
   */
  constructor(message, options = {}) {
    super(String(message));
    this.name = "StepError";
    if (options.code !== undefined) this.code = String(options.code);
    if (options.details !== undefined) this.details = options.details;
    if (options.retryAfterMs !== undefined) {
      this.retryAfterMs = Math.max(0, Math.floor(Number(options.retryAfterMs)) || 0);
    }
    if (options.retryable || this.retryAfterMs !== undefined) this.retryable = true;
  }

  #retry(out) {
    if (this.retryable) out.retryable = true;
    if (this.retryAfterMs !== undefined) out.retry_after_ms = this.retryAfterMs;
    return out;
  }

  /** The object the host receives. */
  toJSON() {
    const out = { message: this.message };
    if (this.code !== undefined) out.code = this.code;
    if (this.details !== undefined) out.details = this.details;
    return this.#retry(out);
  }

  /** The JSON text the host receives. */
  toJSONText() {
    try {
      return JSON.stringify(this.toJSON());
    } catch {
      // Details JSON cannot serialise (a cycle, a BigInt): keep message and code.
      const out = { message: this.message };
      if (this.code !== undefined) out.code = this.code;
      return JSON.stringify(this.#retry(out));
    }
  }
}

/** The payload of a host call's error (componentize-js throws it wrapped). */
export function payloadOf(e) {
  return e !== null && typeof e === "object" && "payload" in e ? e.payload : e;
}
