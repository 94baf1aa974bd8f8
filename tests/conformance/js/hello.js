// Conformance case `hello`.
import { step, log, StepError } from "airlock-sdk";

export const run = step((input) => {
  if (!input.name) throw new StepError("name must not be empty", { code: "empty_name" });
  log.info(`greeting ${input.name}`);
  return { greeting: `Hello, ${input.name}!` };
});
