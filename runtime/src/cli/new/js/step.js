// {{name}}: `{"name": "Ada"}` in, a greeting out.
import { step, log, StepError } from "airlock-sdk";

export const run = step((input) => {
  const name = String(input.name ?? "").trim();
  if (!name) throw new StepError("`name` must not be empty", { code: "empty_name" });
  log.info(`greeting ${name}`);
  return { greeting: `Hello, ${name}!` };
});
