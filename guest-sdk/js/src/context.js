// The current run's identity; none of it secret.

import { get as witGet } from "airlock:step/context@0.1.0";

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
