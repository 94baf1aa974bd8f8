// Conformance case `http`.
import { step, secrets, http } from "airlock-sdk";

function kind(send) {
  try {
    send();
  } catch (e) {
    if (e instanceof http.HttpError) return e.kind;
    throw e;
  }
  return "sent";
}

export const run = step((input) => {
  const key = secrets.get("API_KEY");
  const bearer = http
    .post(`${input.url}/items?x=1`)
    .bearer(key)
    .header("x-conformance", "yes")
    .json({ name: "widget", n: 3 })
    .send();
  const account = http.get("/whoami").account("conformance-echo").send();
  return {
    bearer: {
      status: bearer.status,
      content_type: bearer.header("content-type"),
      echo: bearer.json(),
    },
    account: account.json(),
    denied: kind(() => http.get("https://denied.invalid/").send()),
    restricted: kind(() => http.get(input.url).header("authorization", "Bearer mine").send()),
  };
});
