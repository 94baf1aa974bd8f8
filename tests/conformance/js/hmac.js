// Conformance case `hmac`.
import { step, secrets, crypto } from "airlock-sdk";

export const run = step((input) => {
  const key = secrets.get("SIGNING_KEY");
  return {
    sha256: crypto.toHex(crypto.hmacSha256(key, input.payload)),
    sha512: crypto.toHex(crypto.hmacSha512(key, input.payload)),
    sha1: crypto.toHex(crypto.hmacSha1(key, input.payload)),
  };
});
