// Secrets the step's manifest grants, as opaque handles.
//
//   const key = secrets.get("SIGNING_KEY");         // a handle: the value stays in the host
//   const mac = crypto.hmacSha256(key, "payload");
//   const token = secrets.get("TOKEN").reveal();    // only with a reveal grant
//
// Every value a run obtains is masked (`[REDACTED:NAME]`) from its log,
// output and errors, with its common encodings.

import { get as witGet } from "airlock:step/secrets@0.1.0";
import { StepError, payloadOf } from "./error.js";

export const NOT_GRANTED = "not_granted";
export const NOT_FOUND = "not_found";
export const REVEAL_NOT_GRANTED = "reveal_not_granted";

const MESSAGES = {
  not_granted: "not-granted: the step's manifest does not grant this secret",
  not_found: "not-found: no value is stored under this name",
  reveal_not_granted: "reveal-not-granted: the step's manifest does not allow revealing this secret",
};

/** Why a secret call failed; `kind` (also the `code`) is one of the constants above. */
export class SecretError extends StepError {
  constructor(kind, name) {
    super(`secret ${JSON.stringify(name)}: ${MESSAGES[kind] ?? kind}`, { code: kind });
    this.name = "SecretError";
    this.kind = kind;
    this.secretName = name;
  }
}

const kindOf = (e) => String(payloadOf(e)).replaceAll("-", "_");

/** An opaque handle to one secret, valid for the current run. */
export class Secret {
  #handle;
  #name;

  constructor(handle, name) {
    this.#handle = handle;
    this.#name = name;
  }

  /** The name it was obtained under. */
  get name() {
    return this.#name;
  }

  /** The plaintext value, if the manifest grants reveal for this name. */
  reveal() {
    try {
      return this.#handle.reveal();
    } catch (e) {
      throw new SecretError(kindOf(e), this.#name);
    }
  }

  /** @internal the WIT handle, for crypto and http. */
  static handleOf(secret) {
    if (!(secret instanceof Secret)) throw new TypeError("expected a Secret from secrets.get");
    return secret.#handle;
  }

  toJSON() {
    return `Secret(${this.#name})`;
  }
}

/** Returns a handle to the secret `name`; throws SecretError. */
export function get(name) {
  try {
    return new Secret(witGet(String(name)), String(name));
  } catch (e) {
    throw new SecretError(kindOf(e), String(name));
  }
}
