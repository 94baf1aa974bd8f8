// Conformance case `logs`.
import { step, log } from "airlock-sdk";

export const run = step(() => {
  log.trace("one");
  log.debug("two");
  log.info("three");
  log.warn("four");
  log.error("five");
  console.log("six");
  console.error("seven");
  return null;
});
