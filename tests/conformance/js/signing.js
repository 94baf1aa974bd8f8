// Conformance case `signing`.
import { step, secrets, http } from "airlock-sdk";

function between(text, start) {
  const i = text.indexOf(start);
  return i < 0 ? "" : text.slice(i + start.length).split(",")[0];
}

function sigv4Parts(auth) {
  const parts = between(auth, "Credential=").split("/");
  return {
    algorithm: auth.split(" ")[0],
    key_id: parts[0],
    scope: parts.slice(2).join("/"),
    signed_headers: between(auth, "SignedHeaders="),
    signature_length: between(auth, "Signature=").length,
  };
}

export const run = step((input) => {
  const key = secrets.get("AWS_KEY");
  const aws = { accessKeyId: "AKIDEXAMPLE", secretKey: key, region: "us-east-1", service: "s3" };
  const signed = http
    .post(`${input.url}/upload?b=2&a=1`)
    .header("x-conformance", "yes")
    .json({ name: "widget" })
    .awsSigV4(aws)
    .send();
  const echo = signed.json();
  const sigv4 = sigv4Parts(echo.authorization ?? "");
  sigv4.status = signed.status;
  for (const field of ["method", "path", "query"]) sigv4[field] = echo[field];
  const pw = secrets.get("DIGEST_PW");
  const digest = http.get(`${input.url}/legacy`).digest("user", pw).send();
  let reserved = "sent";
  try {
    http.get(input.url).header("x-amz-date", "20150830T123600Z").awsSigV4(aws).send();
  } catch (e) {
    if (!(e instanceof http.HttpError)) throw e;
    reserved = e.kind;
  }
  return {
    sigv4,
    digest: { status: digest.status, authorization: digest.json().authorization },
    reserved,
  };
});
