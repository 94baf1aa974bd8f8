#!/usr/bin/env node
// Builds a JavaScript step into a component:
//
//   node guest-sdk/js/build.mjs STEP.js -o OUT.wasm [--http]
//
// esbuild bundles STEP.js and what it imports (`airlock-sdk` is this SDK;
// packages from the step's own node_modules work too) into one ES module,
// and componentize-js (pinned in package.json; `npm ci` here installs it)
// turns that into a component of world airlock:step/step (wit/ of the
// repository, two levels up from here).
//
// componentize-js links wasi:http by default (for `fetch`) and exports
// wasi:http/incoming-handler for its fetch-event feature. Airlock never
// links incoming-handler, so `fetch-event` is always disabled. `http` (the
// standard `fetch` over wasi:http/types + outgoing-handler, which Airlock
// links and sends through the same pipeline as `http.send`) is enabled when
// the bundled code names `fetch`, or with --http (for code that reaches it
// some other way; a bundler folds `"fe" + "tch"` to `"fetch"`, which the
// scan sees). Without it the component imports no wasi:http at all, so
// `fetch` cannot reach anything.
//
// AIRLOCK_GUEST_CACHE=DIR reuses a component built from the same bundle,
// WIT, flags, tool versions and this script, keyed by their SHA-256.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = dirname(fileURLToPath(import.meta.url));

function fail(message, code = 2) {
  console.error(`error: ${message}`);
  process.exit(code);
}

function parseArgs(argv) {
  const args = { http: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-o" || a === "--out") args.out = argv[++i];
    else if (a === "--http") args.http = true;
    else if (a.startsWith("-")) fail(`unknown option ${a}\nusage: build.mjs STEP.js -o OUT.wasm [--http]`);
    else if (!args.step) args.step = a;
    else fail(`unexpected argument ${a}`);
  }
  if (!args.step || !args.out) fail("usage: build.mjs STEP.js -o OUT.wasm [--http]");
  return args;
}

async function tools() {
  const missing = () =>
    fail(
      `the pinned build tools are not installed in ${sdk}/node_modules; install them with\n` +
        `  npm ci --prefix ${sdk}`,
      127,
    );
  if (!existsSync(join(sdk, "node_modules", "@bytecodealliance", "componentize-js"))) missing();
  const pins = JSON.parse(readFileSync(join(sdk, "package.json"), "utf8")).devDependencies;
  const installed = (name) =>
    JSON.parse(readFileSync(join(sdk, "node_modules", name, "package.json"), "utf8")).version;
  for (const name of ["@bytecodealliance/componentize-js", "esbuild"]) {
    if (installed(name) !== pins[name]) {
      fail(`${name} ${installed(name)} is installed; this SDK is built with ${pins[name]}:\n  npm ci --prefix ${sdk}`);
    }
  }
  const esbuild = await import(join(sdk, "node_modules", "esbuild", "lib", "main.js"));
  const { componentize } = await import(
    join(sdk, "node_modules", "@bytecodealliance", "componentize-js", "src", "componentize.js")
  );
  return { esbuild: esbuild.default ?? esbuild, componentize, versions: pins };
}

function witDigest(wit, hash) {
  for (const name of readdirSync(wit).sort()) {
    const path = join(wit, name);
    if (name.endsWith(".wit")) hash.update(`${name}\0`).update(readFileSync(path));
  }
}

const args = parseArgs(process.argv.slice(2));
const step = resolve(args.step);
if (!existsSync(step)) fail(`${args.step}: no such file`);
const out = resolve(args.out);
const wit = resolve(process.env.AIRLOCK_WIT ?? join(sdk, "..", "..", "wit"));
if (!existsSync(join(wit, "world.wit"))) fail(`no world.wit in ${wit} (set AIRLOCK_WIT to Airlock's wit/)`);
const { esbuild, componentize, versions } = await tools();

const bundled = await esbuild.build({
  entryPoints: [step],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  // Host interfaces are the component's imports, not modules to bundle.
  external: ["airlock:*", "wasi:*"],
  alias: { "airlock-sdk": join(sdk, "src", "index.js") },
  logLevel: "error",
});
const source = bundled.outputFiles[0].text;

// esbuild drops comments, so the SDK's own prose never turns this on; a
// false positive only adds imports the host links and the grants still bound.
const http = args.http || /\bfetch\b/.test(source);
const disableFeatures = http ? ["fetch-event"] : ["http", "fetch-event"];
const hash = createHash("sha256");
hash.update(JSON.stringify({ versions, disableFeatures }));
// This script too: a change to how it builds must not reuse old components.
hash.update(readFileSync(fileURLToPath(import.meta.url))).update(source);
witDigest(wit, hash);
const key = hash.digest("hex").slice(0, 32);

mkdirSync(dirname(out), { recursive: true });
const cacheDir = process.env.AIRLOCK_GUEST_CACHE;
const cached = cacheDir && join(cacheDir, `js-${key}.wasm`);
if (cached && existsSync(cached)) {
  writeFileSync(out, readFileSync(cached));
  process.exit(0);
}

// componentize-js maps the directory holding the source into the build;
// a private directory holding only the bundle keeps the rest out.
const work = mkdtempSync(join(tmpdir(), "airlock-js-"));
try {
  const bundle = join(work, `${basename(step, ".js")}.bundle.js`);
  writeFileSync(bundle, source);
  process.chdir(work);
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: wit,
    worldName: "step",
    disableFeatures,
  });
  const tmp = `${out}.tmp.${process.pid}`;
  writeFileSync(tmp, component);
  renameSync(tmp, out);
  if (cached) {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(`${cached}.tmp.${process.pid}`, component);
    renameSync(`${cached}.tmp.${process.pid}`, cached);
  }
} catch (e) {
  fail(`componentize-js failed for ${args.step}: ${e && e.message ? e.message : e}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
