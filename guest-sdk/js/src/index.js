// airlock-sdk: write Airlock steps in JavaScript.
//
// A step is a WebAssembly component that takes JSON in and gives JSON out.
// Wrap one function of the parsed input with `step` and export it as `run`;
// build with `node guest-sdk/js/build.mjs step.js -o step.wasm` (esbuild
// bundles the module, componentize-js makes the component):
//
//   import { step, log, StepError } from "airlock-sdk";
//
//   export const run = step((input) => {
//     if (!input.name) throw new StepError("name must not be empty", { code: "empty_name" });
//     log.info(`greeting ${input.name}`);
//     return { greeting: `Hello, ${input.name}!` };
//   });
//
// What the host does with your function:
// - the input JSON is parsed and passed as the one argument;
// - the return value is serialised with JSON.stringify and becomes the output
//   (`undefined` becomes `null`; a value that cannot be serialised ends the run
//   with code `invalid_output`);
// - a thrown StepError becomes the run's error `{message, code?, details?}`;
//   anything else thrown becomes `{message: "<Name>: <text>", code:
//   "unhandled_exception"}` and its stack lands in the run's log (stderr);
// - console.log/console.error land in the run's log as stdout/stderr lines.
//
// The same shape as the Rust SDK (guest-sdk/src): log, context, secrets
// (handles with reveal), crypto (hmac keyed by a handle) and http (a builder
// with account, bearer and json). The standard `fetch` reaches the network
// too, over wasi:http through the same host pipeline (build.mjs enables it
// when the step names `fetch`); make the function async and await it:
//
//   export const run = step(async () => {
//     const r = await fetch("https://github.airlock.internal/user/repos", {
//       headers: { "x-airlock-account": "github" },
//     });
//     return { count: (await r.json()).length };
//   });

export { StepError } from "./error.js";
export { step } from "./step.js";
export * as log from "./log.js";
export * as context from "./context.js";
export * as secrets from "./secrets.js";
export * as crypto from "./crypto.js";
export * as http from "./http.js";
