// Lists the repositories of the run user's connected GitHub account with
// the standard `fetch` (over wasi:http/outgoing-handler), no Airlock HTTP
// API: the header `x-airlock-account: github` names the credential and the
// host `github.airlock.internal` means "relative to the GitHub app's base
// URL". The host removes the header, inserts the account's token and masks
// it out of the response; the step never holds it.
import { step, log, StepError } from "airlock-sdk";

export const run = step(async (input) => {
  const limit = Math.min(Number(input.limit ?? 30) || 30, 100);
  let response;
  try {
    response = await fetch(`https://github.airlock.internal/user/repos?per_page=${limit}&sort=updated`, {
      headers: {
        "x-airlock-account": "github",
        accept: "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
      },
    });
  } catch (e) {
    // A refusal by the host (a host outside the grants, a private address)
    // is a network error to fetch; the reason is a warn line in the run's log.
    throw new StepError(`calling GitHub: ${e && e.message ? e.message : e}`, { code: "http" });
  }
  if (response.status !== 200) {
    throw new StepError(`GitHub answered ${response.status}`, {
      code: "upstream_error",
      details: { body: await response.text() },
    });
  }
  const repos = await response.json();
  log.info(`listed ${repos.length} repositories`);
  return {
    count: repos.length,
    repositories: repos.map((r) => ({
      name: r.full_name,
      private: r.private,
      stars: r.stargazers_count ?? 0,
    })),
  };
});
