// `step(fn)`: a function of parsed JSON becomes the component's `run` export.
//
// `fn` may be async (or return a Promise): componentize-js's export glue
// awaits what `run` returns and runs the component's event loop until the
// promise settles, so the component's `run` stays a synchronous WIT export
// while the step awaits `fetch` or timers. (Its generated binding is
// `async function export_run(...) { ... await run(input) ... }`; see the
// "Async Support" section of componentize-js's README.)

import { StepError } from "./error.js";

function parse(inputText) {
  try {
    return JSON.parse(inputText);
  } catch (e) {
    // The host only sends valid JSON; this guards direct callers.
    throw new StepError(`the input is not JSON: ${e.message}`, { code: "invalid_input" });
  }
}

/** Anything thrown (or rejected) by the step's function, as a StepError. */
function failure(e) {
  if (e instanceof StepError) return e;
  console.error(e && e.stack ? e.stack : String(e));
  const name = e && e.name ? e.name : "Error";
  const message = e && e.message !== undefined ? e.message : String(e);
  return new StepError(`${name}: ${message}`, { code: "unhandled_exception" });
}

function serialize(result) {
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    throw new StepError(`the step's output could not be serialized: ${e.message}`, {
      code: "invalid_output",
    });
  }
  if (text === undefined) {
    throw new StepError("the step's output could not be serialized: it is a function or symbol", {
      code: "invalid_output",
    });
  }
  return text;
}

function isThenable(value) {
  return value !== null && typeof value === "object" && typeof value.then === "function";
}

/**
 * Wraps `fn(input)` as the step's `run`: `export const run = step(fn)`.
 * Failures reach the host as the error JSON (componentize-js turns a thrown
 * value, or a rejection, into the `err` case of `result<string, string>`).
 */
export function step(fn) {
  if (typeof fn !== "function") throw new TypeError("step(fn): fn must be a function");
  return function run(inputText) {
    let result;
    try {
      result = fn(parse(inputText));
    } catch (e) {
      throw failure(e).toJSONText();
    }
    if (!isThenable(result)) {
      try {
        return serialize(result);
      } catch (e) {
        throw e.toJSONText();
      }
    }
    return Promise.resolve(result).then(
      (value) => {
        try {
          return serialize(value);
        } catch (e) {
          throw e.toJSONText();
        }
      },
      (e) => {
        throw failure(e).toJSONText();
      },
    );
  };
}
