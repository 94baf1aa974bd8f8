// Conformance case `context`.
import { step, context } from "airlock-sdk";

export const run = step(() => {
  const c = context.get();
  return {
    run_id: c.runId,
    step: c.step,
    project: c.project,
    external_user_id: c.externalUserId,
    trigger: c.trigger,
    attempt: context.attempt(),
    idempotency_key: context.idempotencyKey(),
  };
});
