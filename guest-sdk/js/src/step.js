// `step(fn)`: a function of parsed JSON becomes the component's `run` export.

import { StepError } from "./error.js";

function call(fn, inputText) {
  let input;
  try {
    input = JSON.parse(inputText);
  } catch (e) {
    // The host only sends valid JSON; this guards direct callers.
    throw new StepError(`the input is not JSON: ${e.message}`, { code: "invalid_input" });
  }
  let result;
  try {
    result = fn(input);
  } catch (e) {
    if (e instanceof StepError) throw e;
    console.error(e && e.stack ? e.stack : String(e));
    const name = e && e.name ? e.name : "Error";
    const message = e && e.message !== undefined ? e.message : String(e);
    throw new StepError(`${name}: ${message}`, { code: "unhandled_exception" });
  }
  if (result !== null && typeof result === "object" && typeof result.then === "function") {
    throw new StepError("the step's function returned a Promise; `run` is synchronous", {
      code: "invalid_output",
    });
  }
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

/**
 * Wraps `fn(input)` as the step's `run`: `export const run = step(fn)`.
 * Failures reach the host as the error JSON (componentize-js turns a thrown
 * value into the `err` case of `result<string, string>`).
 */
export function step(fn) {
  if (typeof fn !== "function") throw new TypeError("step(fn): fn must be a function");
  return function run(inputText) {
    try {
      return call(fn, inputText);
    } catch (e) {
      throw e.toJSONText();
    }
  };
}
