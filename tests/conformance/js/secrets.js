// Conformance case `secrets`.
import { step, log, secrets } from "airlock-sdk";

function outcome(call) {
  try {
    call();
  } catch (e) {
    if (e instanceof secrets.SecretError) return e.kind;
    throw e;
  }
  return "ok";
}

export const run = step(() => {
  const token = secrets.get("TOKEN");
  const value = token.reveal();
  log.info(`revealed ${value}`);
  const handleOnly = secrets.get("HANDLE_ONLY");
  return {
    name: token.name,
    token: value,
    handle_only: outcome(() => handleOnly.reveal()),
    missing: outcome(() => secrets.get("MISSING")),
    ungranted: outcome(() => secrets.get("UNGRANTED")),
  };
});
