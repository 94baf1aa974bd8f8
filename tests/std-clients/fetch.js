// One request with the standard `fetch`; what came back is the output, and
// also a log line and a stdout line (so masking is seen in all three).
import { step, log, StepError } from "airlock-sdk";

export const run = step(async (input) => {
  let response;
  try {
    response = await fetch(input.url, {
      method: input.method ?? "GET",
      headers: input.headers ?? {},
      body: input.body,
    });
  } catch (e) {
    throw new StepError(`fetch failed: ${e && e.message ? e.message : e}`, { code: "request_failed" });
  }
  const body = await response.text();
  log.info(`upstream said: ${body}`);
  console.log(`stdout sees: ${body}`);
  return { status: response.status, headers: Object.fromEntries(response.headers), body };
});
