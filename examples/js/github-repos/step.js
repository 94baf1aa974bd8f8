// Lists the repositories of the run user's connected GitHub account.
// The host inserts the account's token; the step never sees it.
import { step, http, log, StepError } from "airlock-sdk";

export const run = step((input) => {
  const limit = Math.min(Number(input.limit ?? 30) || 30, 100);
  const response = http
    .get(`/user/repos?per_page=${limit}&sort=updated`)
    .header("accept", "application/vnd.github+json")
    .header("x-github-api-version", "2022-11-28")
    .account("github")
    .send();
  if (response.status !== 200) {
    throw new StepError(`GitHub answered ${response.status}`, {
      code: "upstream_error",
      details: { body: response.text() },
    });
  }
  const repos = response.json();
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
