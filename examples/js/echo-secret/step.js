// Leaks its secret on purpose, three ways: stdout, the log, the output.
// Run it to see Airlock mask every one of them as `[REDACTED:TOKEN]`.
import { step, log, secrets } from "airlock-sdk";

export const run = step(() => {
  const token = secrets.get("TOKEN").reveal();
  console.log(`stdout sees the token: ${token}`);
  log.info(`the log sees the token: ${token}`);
  return { token };
});
