//! Builds the one outbound HTTP pipeline a process shares: the egress
//! policy (with the operator's `--allow-range`s), the app catalog (built-in
//! plus `--apps-dir`), the pooled policy-checked client, the per-project
//! rate limit, and connected accounts from the encrypted store with OAuth
//! tokens refreshed by the host.
//!
//! OAuth client credentials: refreshing an app's tokens needs the OAuth
//! app's client id and secret. They live in the project's secret store as
//! `oauth.<slug>.client_id` and `oauth.<slug>.client_secret`, encrypted like
//! every secret. The `oauth.` prefix is reserved: a manifest may not grant
//! it, so no step can read the operator's client secret.

use std::path::PathBuf;
use std::sync::Arc;

use airlock_host_api::apps::{App, Catalog};
use airlock_host_api::http::client::{ClientConfig, build_client, check_literal_host};
use airlock_host_api::http::egress::EgressPolicy;
use airlock_host_api::http::pipeline::{
    AccountError, AccountSource, HttpConfig, Pipeline, ResolvedAccount,
};
use airlock_host_api::http::ratelimit::{MemoryStore, Quota, RateLimitStore, RateLimiter};
use ipnet::IpNet;
use zeroize::Zeroizing;

use crate::oauth::{OAuthClientConfig, RefreshError, TokenRefresher};
use crate::store::accounts::{AccountStatus, AccountStore};
use crate::store::{MasterKey, SecretStore};

/// OAuth tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How the outbound side of a process is set up.
#[derive(Debug, Clone, Default)]
pub struct OutboundConfig {
    /// Address ranges the operator allows despite their class (e.g.
    /// `127.0.0.0/8` for local testing).
    pub allow_ranges: Vec<IpNet>,
    /// A directory of extra app definitions (`<slug>.toml`).
    pub apps_dir: Option<PathBuf>,
    pub http: HttpConfig,
    pub quota: Quota,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Catalog(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The built-in catalog plus the operator's directory.
pub fn load_catalog(apps_dir: Option<&std::path::Path>) -> Result<Catalog, OutboundError> {
    let mut catalog = Catalog::builtin().map_err(|e| OutboundError::Catalog(e.to_string()))?;
    if let Some(dir) = apps_dir {
        catalog
            .load_dir(dir)
            .map_err(|e| OutboundError::Catalog(e.to_string()))?;
    }
    Ok(catalog)
}

/// The shared policy and client, for the pipeline and the token refresher.
pub fn policy_and_client(
    config: &OutboundConfig,
) -> Result<(Arc<EgressPolicy>, reqwest::Client), OutboundError> {
    let policy = Arc::new(EgressPolicy::new(config.allow_ranges.clone()));
    let client = build_client(policy.clone(), &ClientConfig::default())
        .map_err(|e| OutboundError::Client(e.to_string()))?;
    Ok((policy, client))
}

/// The pipeline every run of this process shares, its rate limit kept in
/// this process.
pub fn pipeline(
    config: &OutboundConfig,
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    catalog: Arc<Catalog>,
    accounts: Arc<dyn AccountSource>,
) -> Arc<Pipeline> {
    let limiter = RateLimiter::new(config.quota);
    pipeline_with(config, policy, client, catalog, accounts, limiter)
}

/// The pipeline with the project rate limit in `limiter` (shared by every
/// node when its store is the database).
pub fn pipeline_with(
    config: &OutboundConfig,
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
    catalog: Arc<Catalog>,
    accounts: Arc<dyn AccountSource>,
    limiter: RateLimiter,
) -> Arc<Pipeline> {
    Arc::new(Pipeline::new(
        client,
        policy,
        Arc::new(limiter),
        catalog,
        accounts,
        config.http.clone(),
    ))
}

/// Where the rate limits of `family` live: this process for SQLite (one
/// node), the database for PostgreSQL (every node counts together).
pub fn rate_limit_store(db: &crate::store::Db, family: &'static str) -> Arc<dyn RateLimitStore> {
    match db.backend() {
        crate::store::Backend::Sqlite => Arc::new(MemoryStore::new()),
        crate::store::Backend::Postgres => Arc::new(
            crate::store::shared_limits::DbRateLimits::new(db.clone(), family),
        ),
    }
}

/// The secret names holding an app's OAuth client credentials.
pub fn oauth_client_secret_names(slug: &str) -> (String, String) {
    (
        format!("{RESERVED_SECRET_PREFIX}{slug}.client_id"),
        format!("{RESERVED_SECRET_PREFIX}{slug}.client_secret"),
    )
}

/// Secret names under this prefix belong to the host; manifests cannot grant them.
pub const RESERVED_SECRET_PREFIX: &str = "oauth.";

/// Connected accounts from the encrypted store.
pub struct StoredAccounts {
    accounts: AccountStore,
    secrets: SecretStore,
    key: Arc<MasterKey>,
    refresher: TokenRefresher,
    policy: Arc<EgressPolicy>,
}

impl StoredAccounts {
    pub fn new(
        secrets: SecretStore,
        key: Arc<MasterKey>,
        client: reqwest::Client,
        policy: Arc<EgressPolicy>,
    ) -> Self {
        let accounts = AccountStore::new(&secrets);
        let mut refresher =
            TokenRefresher::new(accounts.clone(), key.clone(), client, REFRESH_MARGIN);
        if secrets.db().backend() == crate::store::Backend::Postgres {
            refresher = refresher.with_lock(Arc::new(crate::oauth::SharedRefreshLock::new(
                secrets.db().clone(),
            )));
        }
        Self {
            accounts,
            secrets,
            key,
            refresher,
            policy,
        }
    }

    /// Tells `hook` of every account the refresher marks `needs_reauth`.
    pub fn with_needs_reauth_hook(mut self, hook: Arc<dyn crate::oauth::NeedsReauthHook>) -> Self {
        self.refresher = self.refresher.with_needs_reauth_hook(hook);
        self
    }

    async fn client_config(
        &self,
        project: &str,
        app: &App,
        account: &ResolvedAccount,
    ) -> Result<OAuthClientConfig, AccountError> {
        let oauth = app
            .oauth
            .as_ref()
            .ok_or_else(|| AccountError(format!("app {} has no OAuth endpoints", app.slug)))?;
        let (_, token_url_text) = app
            .resolve_oauth_urls(&account.custom_fields)
            .map_err(|e| AccountError(e.to_string()))?
            .ok_or_else(|| AccountError(format!("app {} has no OAuth endpoints", app.slug)))?;
        let token_url = url::Url::parse(&token_url_text)
            .map_err(|e| AccountError(format!("app {}: bad token URL: {e}", app.slug)))?;
        check_literal_host(&self.policy, &token_url).map_err(|e| AccountError(e.to_string()))?;
        // Under the reserved prefix: no manifest can grant these names, so
        // no step can read the operator's OAuth client secret.
        let (id_name, secret_name) = oauth_client_secret_names(&app.slug);
        let get = |name: String| async move {
            self.secrets
                .get(&self.key, project, &name)
                .await
                .map_err(|e| AccountError(format!("cannot read {name}: {e}")))?
                .ok_or_else(|| {
                    AccountError(format!(
                        "refreshing {} tokens needs the OAuth client credentials; store them as \
                         secrets {name} in project {project}",
                        app.slug
                    ))
                })
        };
        let client_id = get(id_name).await?;
        let client_secret = get(secret_name).await?;
        Ok(OAuthClientConfig {
            token_url: token_url_text,
            client_id: client_id.to_string(),
            client_secret,
            scopes: oauth.scopes.clone(),
        })
    }
}

#[async_trait::async_trait]
impl AccountSource for StoredAccounts {
    async fn find(
        &self,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<ResolvedAccount, AccountError> {
        let account = self
            .accounts
            .find(&self.key, project, external_user_id, app_or_id)
            .await
            .map_err(|e| AccountError(e.to_string()))?
            .ok_or_else(|| {
                AccountError(format!(
                    "external user {external_user_id:?} has no connected account {app_or_id:?}"
                ))
            })?;
        if account.meta.status == AccountStatus::NeedsReauth {
            return Err(AccountError(format!(
                "account {} needs re-authorisation: its OAuth refresh was refused",
                account.meta.id
            )));
        }
        Ok(ResolvedAccount {
            id: account.meta.id.clone(),
            app: account.meta.app.clone(),
            custom_fields: account.meta.custom_fields.clone(),
            expires_at: account.meta.expires_at,
            credentials: account.credentials,
            from_run: false,
        })
    }

    async fn oauth_access_token(
        &self,
        project: &str,
        account: &ResolvedAccount,
        app: &App,
        stale: Option<&str>,
    ) -> Result<Zeroizing<String>, AccountError> {
        // A token that is not known to expire soon is used as stored: no
        // lock, no request, and no need for the OAuth client credentials.
        if stale.is_none()
            && let Some(token) = account.credentials.get("access_token")
            && account
                .expires_at
                .is_none_or(|at| at > now() + REFRESH_MARGIN.as_secs() as i64)
        {
            return Ok(token.clone());
        }
        let config = self.client_config(project, app, account).await?;
        let token = match stale {
            Some(stale) => {
                self.refresher
                    .refresh_after_unauthorized(project, &account.id, &config, stale)
                    .await
            }
            None => {
                self.refresher
                    .access_token(project, &account.id, &config, false)
                    .await
            }
        };
        token.map_err(|e| match e {
            RefreshError::NeedsReauth { account_id } => AccountError(format!(
                "account {account_id} needs re-authorisation: its OAuth refresh was refused"
            )),
            other => AccountError(other.to_string()),
        })
    }
}
