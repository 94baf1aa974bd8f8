//! Every shipped app file loaded and its URLs rendered; the `[oauth]`
//! settings the Connect flow reads.

use std::collections::BTreeMap;

use super::*;

/// A value for `field` that its pattern accepts, from a few candidates a
/// real user might type.
fn sample_value(field: &CustomField) -> String {
    const CANDIDATES: &[&str] = &[
        "acme",
        "acme1",
        "abcdefghij",
        "acme-corp",
        "eu",
        "us1",
        "acme.example.com",
        "1",
    ];
    CANDIDATES
        .iter()
        .find(|c| field.matches(c))
        .unwrap_or_else(|| panic!("no sample value matches {}", field.pattern()))
        .to_string()
}

fn samples(app: &App) -> BTreeMap<String, String> {
    app.custom_fields
        .iter()
        .map(|f| (f.name.clone(), sample_value(f)))
        .collect()
}

fn host_of(url: &str) -> String {
    ::url::Url::parse(url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_catalog_has_at_least_sixty_apps_and_forty_oauth_ones() {
    let catalog = Catalog::builtin().unwrap();
    assert!(catalog.len() >= 60, "only {} apps", catalog.len());
    let oauth = catalog
        .iter()
        .filter(|a| a.auth == AuthKind::OAuth2)
        .count();
    assert!(oauth >= 40, "only {oauth} OAuth apps");
    for slug in [
        "google_sheets",
        "gmail",
        "google_drive",
        "microsoft_outlook",
        "slack",
        "github",
        "hubspot",
        "salesforce",
        "notion_oauth",
        "zoom",
        "dropbox",
        "confluence",
        "jira_oauth",
        "linear_oauth",
        "asana_oauth",
        "spotify",
        "discord_oauth",
    ] {
        let app = catalog
            .get(slug)
            .unwrap_or_else(|| panic!("{slug} is missing"));
        assert_eq!(app.auth, AuthKind::OAuth2, "{slug}");
    }
}

#[test]
fn every_app_file_loads_and_renders_its_urls() {
    let catalog = Catalog::builtin().unwrap();
    for app in catalog.iter() {
        let slug = &app.slug;
        let fields = samples(app);
        app.validate_custom_fields(&fields)
            .unwrap_or_else(|e| panic!("{slug}: {e}"));
        if let Some(base) = app.resolve_base_url(&fields).unwrap() {
            assert!(base.starts_with("https://"), "{slug}: {base}");
            let host = host_of(&base);
            assert!(
                app.allows_host(&host, &fields).unwrap(),
                "{slug}: base URL host {host} is not in allowed_domains"
            );
        }
        let Some(spec) = &app.oauth else { continue };
        let (authorize, token) = app.resolve_oauth_urls(&fields).unwrap().unwrap();
        for url in [&authorize, &token] {
            assert!(url.starts_with("https://"), "{slug}: {url}");
            ::url::Url::parse(url).unwrap_or_else(|e| panic!("{slug}: {url}: {e}"));
        }
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let url = app
            .authorize_url(
                &fields,
                AuthorizeRequest {
                    client_id: "client 1",
                    redirect_uri: "https://airlock.example.com/connect/oauth/callback",
                    state: "st4te",
                    code_challenge: spec.pkce.then_some(challenge),
                },
            )
            .unwrap_or_else(|e| panic!("{slug}: {e}"));
        let parsed = ::url::Url::parse(&url).unwrap();
        assert_eq!(host_of(&url), host_of(&authorize), "{slug}");
        let query: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
        assert_eq!(query["response_type"], "code", "{slug}");
        assert_eq!(query["client_id"], "client 1", "{slug}");
        assert_eq!(query["state"], "st4te", "{slug}");
        assert_eq!(
            query["redirect_uri"], "https://airlock.example.com/connect/oauth/callback",
            "{slug}"
        );
        if spec.scopes.is_empty() {
            assert!(!query.contains_key("scope"), "{slug}");
        } else {
            assert_eq!(query["scope"], spec.scope_param(), "{slug}");
        }
        assert_eq!(
            query.get("code_challenge_method").map(String::as_str),
            spec.pkce.then_some("S256"),
            "{slug}"
        );
        for (k, v) in &spec.authorize_params {
            assert_eq!(&query[k], v, "{slug}");
        }
    }
}

const OAUTH_APP: &str = r#"slug = "foo"
name = "Foo"
auth = "oauth2"
allowed_domains = ["api.foo.com"]

[credential]
header = "Authorization"
template = "Bearer {{access_token}}"

[oauth]
authorize_url = "https://foo.com/authorize"
token_url = "https://foo.com/token"
"#;

fn load(text: &str) -> Result<App, String> {
    Catalog::from_sources(&[("apps/foo.toml".to_owned(), text.to_owned())])
        .map(|c| c.get("foo").unwrap().clone())
        .map_err(|e| e.to_string())
}

#[test]
fn pkce_is_on_and_client_auth_is_basic_by_default() {
    let spec = load(OAUTH_APP).unwrap().oauth.unwrap();
    assert!(spec.pkce);
    assert_eq!(spec.client_auth, ClientAuth::Basic);
    let spec = load(&format!(
        "{OAUTH_APP}client_auth = \"body\"\npkce = false\n"
    ))
    .unwrap()
    .oauth
    .unwrap();
    assert!(!spec.pkce);
    assert_eq!(spec.client_auth, ClientAuth::Body);
    let e = load(&format!("{OAUTH_APP}client_auth = \"header\"\n")).unwrap_err();
    assert!(e.starts_with("apps/foo.toml: "), "{e}");
    assert!(e.contains("basic") && e.contains("body"), "{e}");
}

#[test]
fn the_host_owns_the_flow_parameters() {
    for reserved in [
        "state",
        "code_challenge_method",
        "redirect_uri",
        "client_id",
    ] {
        let e = load(&format!(
            "{OAUTH_APP}authorize_params = {{ {reserved} = \"x\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            e,
            format!("apps/foo.toml: oauth.authorize_params.{reserved}: is set by the host")
        );
    }
}

#[test]
fn a_custom_field_in_the_token_url_is_checked_before_use() {
    let catalog = Catalog::builtin().unwrap();
    let sf = catalog.get("salesforce").unwrap();
    assert_eq!(
        sf.oauth_url_fields().into_iter().collect::<Vec<_>>(),
        ["instance"]
    );
    let evil = BTreeMap::from([("instance".to_owned(), "evil.com/x".to_owned())]);
    let e = sf
        .authorize_url(
            &evil,
            AuthorizeRequest {
                client_id: "c",
                redirect_uri: "https://a.example/cb",
                state: "s",
                code_challenge: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(e, AppError::CustomFieldMismatch { ref field, .. } if field == "instance"),
        "{e}"
    );
    assert!(!e.to_string().contains("evil"), "{e}");
}
