// Conformance case `errors`.
import { step, StepError } from "airlock-sdk";

export const run = step((input) => {
  switch (input.kind) {
    case "plain":
      throw new StepError("plain failure");
    case "coded":
      throw new StepError("coded failure", { code: "conformance_coded" });
    case "details":
      throw new StepError("failure with details", {
        code: "conformance_details",
        details: { list: [1, "two", null], flag: true },
      });
    default:
      return {
        text: "héllo ✓ 😀",
        nested: { list: [1, 2.5, true, null, { deep: [] }] },
        empty: {},
      };
  }
});
