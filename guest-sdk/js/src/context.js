// The current run's identity; none of it secret.

import {
  attempt as witAttempt,
  get as witGet,
  idempotencyKey as witIdempotencyKey,
} from "airlock:step/context@0.1.0";

/**
 * @returns {{runId: string, step: string, project: string,
 *   externalUserId: string | null, trigger: "cli" | "api" | "http"}}
 */
export function get() {
  const c = witGet();
  return {
    runId: c.runId,
    step: c.step,
    project: c.project,
    externalUserId: c.externalUserId ?? null,
    trigger: c.trigger,
  };
}

/**
 * Which attempt of the run this is: 1 for the first. A queued run runs
 * again (the next attempt) when its step's `[retry]` policy retries a
 * failure, or when the node running it stopped mid-run; make side effects
 * idempotent, e.g. with `idempotencyKey()`.
 * @returns {number}
 */
export function attempt() {
  return witAttempt();
}

/**
 * The `Idempotency-Key` the run was queued with (the same for every
 * attempt), or null.
 * @returns {string | null}
 */
export function idempotencyKey() {
  return witIdempotencyKey() ?? null;
}
