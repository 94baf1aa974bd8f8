// Leveled lines for the run's log. The host masks secrets in them.

import { log } from "airlock:step/log@0.1.0";

export const trace = (message) => log("trace", String(message));
export const debug = (message) => log("debug", String(message));
export const info = (message) => log("info", String(message));
export const warn = (message) => log("warn", String(message));
export const error = (message) => log("error", String(message));
