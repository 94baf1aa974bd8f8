// The smallest useful step: `{"name": "Ada"}` in, a greeting out. Behind an
// HTTP trigger it reads the name from the request's JSON body.
import { step, log, StepError } from "airlock-sdk";

export const run = step((input) => {
  const body = input.json !== null && typeof input.json === "object" ? input.json : input;
  const name = String(body.name ?? "").trim();
  if (!name) throw new StepError("`name` must not be empty", { code: "empty_name" });
  log.info(`greeting ${name}`);
  return { greeting: `Hello, ${name}!` };
});
