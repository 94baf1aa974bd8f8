//! Credentials passed with one run: they act as that run's connected
//! accounts for their apps.
//!
//! Why they exist: an operator's backend may hold an end user's token itself
//! and not want Airlock to store it. So the run request carries the
//! credential, and:
//!
//! - it lives only in this value, for the run's lifetime (zeroized on drop);
//!   nothing here is written anywhere, so "never stored, not even with
//!   records on" holds by construction;
//! - every value is registered with the run's redactor before the guest
//!   starts, so it is masked from logs, output and errors even if an
//!   upstream echoes it;
//! - the step still needs the manifest grant for the app (`[http] apps`):
//!   passing a credential does not widen what the step may reach;
//! - an OAuth access token passed this way is used as given, never
//!   refreshed: there is nowhere to keep a rotated token, and the caller
//!   owns its lifecycle. A 401 goes back to the step.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::pipeline::ResolvedAccount;
use crate::apps::{AppError, AuthKind, Catalog, CredentialNamesError};
use crate::redact::Redactor;

/// Pipedream Connect's name for an OAuth access token; accepted as an alias
/// of `access_token`.
const ACCESS_TOKEN_ALIAS: &str = "oauth_access_token";

/// The accounts of one run, by app slug.
#[derive(Default)]
pub struct RunAccounts {
    by_app: BTreeMap<String, ResolvedAccount>,
}

impl std::fmt::Debug for RunAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunAccounts")
            .field("apps", &self.by_app.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why run-time credentials were refused. Names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunAccountsError {
    #[error("credentials: unknown app {0:?}")]
    UnknownApp(String),
    #[error("credentials: {0}")]
    App(#[from] AppError),
    #[error("credentials: {0}")]
    Names(CredentialNamesError),
}

impl RunAccounts {
    /// Builds the run's accounts from `{app: {field: value}}`. A field the
    /// app declares as a custom field (e.g. Zendesk's `subdomain`) goes to
    /// the account's custom fields; the rest are credentials, checked
    /// against what the app's auth kind needs.
    pub fn new(
        catalog: &Catalog,
        given: BTreeMap<String, BTreeMap<String, Zeroizing<String>>>,
    ) -> Result<Self, RunAccountsError> {
        let mut by_app = BTreeMap::new();
        for (slug, fields) in given {
            let app = catalog
                .get(&slug)
                .ok_or_else(|| RunAccountsError::UnknownApp(slug.clone()))?;
            let mut credentials = BTreeMap::new();
            let mut custom_fields = BTreeMap::new();
            for (name, value) in fields {
                if app.custom_field(&name).is_some() {
                    custom_fields.insert(name, value.to_string());
                } else if name == ACCESS_TOKEN_ALIAS && app.auth == AuthKind::OAuth2 {
                    credentials.insert("access_token".to_owned(), value);
                } else {
                    credentials.insert(name, value);
                }
            }
            app.validate_custom_fields(&custom_fields)?;
            app.check_credential_names(credentials.keys().map(String::as_str))
                .map_err(RunAccountsError::Names)?;
            let account = ResolvedAccount {
                id: format!("run:{slug}"),
                app: slug.clone(),
                credentials,
                custom_fields,
                expires_at: None,
                from_run: true,
            };
            by_app.insert(slug, account);
        }
        Ok(Self { by_app })
    }

    /// The run's account for `app`, if one was passed.
    pub fn get(&self, app: &str) -> Option<&ResolvedAccount> {
        self.by_app.get(app)
    }

    pub fn is_empty(&self) -> bool {
        self.by_app.is_empty()
    }

    /// Registers every credential value with `redactor`.
    pub fn register(&self, redactor: &Redactor) {
        for account in self.by_app.values() {
            let label = format!("account:{}", account.app);
            for value in account.credentials.values() {
                redactor.register(&label, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(
        app: &str,
        fields: &[(&str, &str)],
    ) -> BTreeMap<String, BTreeMap<String, Zeroizing<String>>> {
        let fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
            .collect();
        BTreeMap::from([(app.to_string(), fields)])
    }

    #[test]
    fn an_oauth_alias_becomes_the_access_token() {
        let catalog = Catalog::builtin().unwrap();
        let run = RunAccounts::new(
            &catalog,
            given("slack", &[("oauth_access_token", "xoxb-123456")]),
        )
        .unwrap();
        let account = run.get("slack").unwrap();
        assert_eq!(account.credentials["access_token"].as_str(), "xoxb-123456");
        assert!(account.from_run);
    }

    #[test]
    fn custom_fields_are_split_from_credentials() {
        let catalog = Catalog::builtin().unwrap();
        let app = catalog.get("zendesk").unwrap();
        let custom = &app.custom_fields[0].name;
        let mut fields: Vec<(&str, &str)> = vec![(custom.as_str(), "acme")];
        let creds: Vec<String> = app
            .credential_fields()
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.to_string())
            .collect();
        for c in &creds {
            fields.push((c.as_str(), "value-123456"));
        }
        let run = RunAccounts::new(&catalog, given("zendesk", &fields)).unwrap();
        let account = run.get("zendesk").unwrap();
        assert_eq!(account.custom_fields[custom.as_str()], "acme");
        assert!(!account.credentials.contains_key(custom.as_str()));
    }

    #[test]
    fn unknown_apps_and_fields_and_missing_fields_are_named() {
        let catalog = Catalog::builtin().unwrap();
        let e = RunAccounts::new(&catalog, given("nope", &[("token", "x")])).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
        let e = RunAccounts::new(&catalog, given("slack", &[("api_key", "secret-value-1")]))
            .unwrap_err();
        assert!(e.to_string().contains("api_key"), "{e}");
        assert!(!e.to_string().contains("secret-value-1"), "{e}");
        let e = RunAccounts::new(&catalog, given("slack", &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("missing credential field(s) access_token"),
            "{e}"
        );
    }

    #[test]
    fn every_value_is_registered() {
        let catalog = Catalog::builtin().unwrap();
        let run = RunAccounts::new(
            &catalog,
            given("slack", &[("access_token", "xoxb-secret-42")]),
        )
        .unwrap();
        let redactor = Redactor::new();
        run.register(&redactor);
        assert!(
            !redactor
                .redact("token xoxb-secret-42")
                .contains("xoxb-secret-42")
        );
    }
}
