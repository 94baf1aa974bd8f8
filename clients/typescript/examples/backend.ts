/**
 * An operator's backend with the TypeScript client: a connect link for an
 * end user, their accounts, a proxy call as them, and a run with its log.
 *
 *   AIRLOCK_SERVER=http://127.0.0.1:8080 AIRLOCK_CLIENT_ID=oc_… AIRLOCK_CLIENT_SECRET=cs_… \
 *     node dist/examples/backend.js alpha user-123 https://api.github.com/user hello
 */
import { AirlockClient } from "../src/index.js";

const [project, user, url, step] = process.argv.slice(2);
if (!step) throw new Error("usage: backend PROJECT EXTERNAL_USER_ID PROXY_URL STEP");
const env = (name: string) => process.env[name] ?? (() => { throw new Error(`set ${name}`); })();

// OAuth client credentials: the token is fetched and refreshed by the client.
const airlock = new AirlockClient({
  baseUrl: env("AIRLOCK_SERVER"),
  auth: { clientId: env("AIRLOCK_CLIENT_ID"), clientSecret: env("AIRLOCK_CLIENT_SECRET") },
});

// 1. A connect token: send the end user to its link.
const token = await airlock.createConnectToken(project, { external_user_id: user });
console.log(`connect link: ${token.connect_link_url}`);

// 2. The end user's accounts.
const accounts = await airlock.listAccounts(project, { externalUserId: user });
for (const a of accounts) console.log(`account ${a.id} (${a.app}, ${a.health})`);

// 3. The proxy as that user, with their first account: a plain URL.
if (accounts.length > 0) {
  const answer = await airlock.proxy(project, { url, externalUserId: user, accountId: accounts[0].id });
  console.log(`proxy: ${answer.status} ${answer.text()}`);
}

// 4. A run, and its log as it is written.
const queued = await airlock.queueRun(project, step, { input: { name: user } });
for await (const event of airlock.streamLogs(project, queued.id)) {
  if (event.type === "line") console.log(`${String(event.line.elapsed_ms).padStart(6)}ms ${event.line.text}`);
  else console.log(`run ${queued.id} ${event.status}`);
}
