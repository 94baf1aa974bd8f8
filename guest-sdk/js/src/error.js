// The error a step returns: `{message, code?, details?}`.

export class StepError extends Error {
  /**
   * @param {string} message what went wrong, for a person
   * @param {{code?: string, details?: unknown}} [options] a machine-readable
   *   code (`"not_found"`) and any JSON-serialisable details
   */
  constructor(message, options = {}) {
    super(String(message));
    this.name = "StepError";
    if (options.code !== undefined) this.code = String(options.code);
    if (options.details !== undefined) this.details = options.details;
  }

  /** The object the host receives. */
  toJSON() {
    const out = { message: this.message };
    if (this.code !== undefined) out.code = this.code;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }

  /** The JSON text the host receives. */
  toJSONText() {
    try {
      return JSON.stringify(this.toJSON());
    } catch {
      // Details JSON cannot serialise (a cycle, a BigInt): keep message and code.
      const out = { message: this.message };
      if (this.code !== undefined) out.code = this.code;
      return JSON.stringify(out);
    }
  }
}

/** The payload of a host call's error (componentize-js throws it wrapped). */
export function payloadOf(e) {
  return e !== null && typeof e === "object" && "payload" in e ? e.payload : e;
}
