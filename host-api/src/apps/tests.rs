use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_one(file: &str, text: &str) -> Result<Catalog, CatalogError> {
    Catalog::from_sources(&[(file.to_owned(), text.to_owned())])
}

fn app(file: &str, text: &str) -> App {
    let slug = Path::new(file).file_stem().unwrap().to_str().unwrap();
    load_one(file, text)
        .unwrap_or_else(|e| panic!("{e}"))
        .get(slug)
        .unwrap()
        .clone()
}

fn error(file: &str, text: &str) -> String {
    match load_one(file, text) {
        Ok(_) => panic!("{file} loaded but should not have:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn builtin() -> Catalog {
    Catalog::builtin().unwrap_or_else(|e| panic!("{e}"))
}

fn zendesk() -> App {
    builtin().get("zendesk").unwrap().clone()
}

/// A minimal valid api-key app, with `extra` appended (as TOML).
fn api_key_app(slug: &str, extra: &str) -> String {
    format!(
        r#"slug = "{slug}"
name = "Foo"
auth = "api-key"
allowed_domains = ["api.foo.com"]
{extra}
[credential]
header = "Authorization"
template = "Bearer {{{{api_key}}}}"
"#
    )
}

// ---- the builtin catalog ----

#[test]
fn builtin_catalog_loads_with_the_named_apps() {
    let catalog = builtin();
    assert!(catalog.len() >= 20, "only {} apps", catalog.len());
    for slug in [
        "slack",
        "github",
        "gitlab",
        "stripe",
        "twilio",
        "openai",
        "anthropic",
        "zendesk",
        "shopify",
        "salesforce",
        "google_sheets",
        "notion",
        "hubspot",
        "airtable",
        "linear",
        "jira",
        "mailgun",
        "sendgrid",
        "discord",
        "dropbox",
    ] {
        let app = catalog
            .get(slug)
            .unwrap_or_else(|| panic!("builtin catalog lacks {slug}"));
        assert!(app.docs_url.is_some(), "{slug} has no docs_url");
        assert_eq!(
            catalog.origin(slug),
            Some(format!("apps/{slug}.toml").as_str())
        );
    }
    assert_eq!(catalog.iter().count(), catalog.len());
}

#[test]
fn every_file_in_the_apps_dir_is_builtin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for name in &on_disk {
        assert!(name.ends_with(".toml"), "stray file apps/{name}");
    }
    let listed: BTreeSet<String> = BUILTIN.iter().map(|(s, _)| format!("{s}.toml")).collect();
    assert_eq!(listed, on_disk, "BUILTIN in apps/mod.rs is out of date");
    assert_eq!(BUILTIN.len(), listed.len(), "BUILTIN lists a file twice");
    // The embedded text is the file's current text.
    for (slug, text) in BUILTIN {
        let disk = std::fs::read_to_string(dir.join(format!("{slug}.toml"))).unwrap();
        assert_eq!(*text, disk);
    }
}

#[test]
fn builtin_apps_have_their_documented_placement() {
    let c = builtin();
    let placement = |slug: &str| {
        let app = c.get(slug).unwrap();
        (
            app.auth,
            app.credential.location.clone(),
            app.credential.template.source().to_owned(),
        )
    };
    let header = |h: &str| CredentialLocation::Header(h.to_owned());
    assert_eq!(
        placement("stripe"),
        (
            AuthKind::ApiKey,
            header("Authorization"),
            "Bearer {{api_key}}".into()
        )
    );
    assert_eq!(
        placement("anthropic"),
        (AuthKind::ApiKey, header("x-api-key"), "{{api_key}}".into())
    );
    assert_eq!(
        placement("linear"),
        (
            AuthKind::ApiKey,
            header("Authorization"),
            "{{api_key}}".into()
        )
    );
    assert_eq!(
        placement("discord"),
        (
            AuthKind::Custom,
            header("Authorization"),
            "Bot {{token}}".into()
        )
    );
    assert_eq!(
        placement("shopify"),
        (
            AuthKind::Custom,
            header("X-Shopify-Access-Token"),
            "{{access_token}}".into()
        )
    );
    for slug in ["twilio", "zendesk", "jira", "mailgun"] {
        assert_eq!(
            placement(slug),
            (
                AuthKind::Basic,
                header("Authorization"),
                "Basic {{basic}}".into()
            )
        );
    }
    for slug in [
        "slack",
        "github",
        "gitlab",
        "salesforce",
        "google_sheets",
        "hubspot",
        "dropbox",
    ] {
        assert_eq!(
            placement(slug),
            (
                AuthKind::OAuth2,
                header("Authorization"),
                "Bearer {{access_token}}".into()
            ),
            "{slug}"
        );
        assert!(c.get(slug).unwrap().oauth.is_some());
    }
    for slug in ["openai", "notion", "airtable", "sendgrid"] {
        assert_eq!(
            placement(slug),
            (
                AuthKind::Bearer,
                header("Authorization"),
                "Bearer {{token}}".into()
            )
        );
    }
    let twilio = c.get("twilio").unwrap();
    assert_eq!(
        twilio.resolve_base_url(&map(&[])).unwrap().as_deref(),
        Some("https://api.twilio.com/2010-04-01")
    );
    let shop = c.get("shopify").unwrap();
    assert_eq!(
        shop.resolve_base_url(&map(&[("shop", "acme")]))
            .unwrap()
            .as_deref(),
        Some("https://acme.myshopify.com/admin/api/2024-10")
    );
    let gitlab = c.get("gitlab_self_managed").unwrap();
    assert_eq!(
        gitlab
            .resolve_base_url(&map(&[("host", "gitlab.example.com")]))
            .unwrap()
            .as_deref(),
        Some("https://gitlab.example.com/api/v4")
    );
    assert!(
        gitlab
            .allows_host(
                "gitlab.example.com",
                &map(&[("host", "gitlab.example.com")])
            )
            .unwrap()
    );
    let sf = c.get("salesforce").unwrap();
    let fields = map(&[("instance", "acme")]);
    assert_eq!(
        sf.resolve_oauth_urls(&fields).unwrap(),
        Some((
            "https://acme.my.salesforce.com/services/oauth2/authorize".to_owned(),
            "https://acme.my.salesforce.com/services/oauth2/token".to_owned()
        ))
    );
    assert!(sf.allows_host("acme.my.salesforce.com", &fields).unwrap());
    assert_eq!(
        c.get("slack")
            .unwrap()
            .oauth
            .as_ref()
            .unwrap()
            .scope_param(),
        "chat:write,channels:read"
    );
    assert!(c.iter().all(|a| a.proxy_enabled));
}

#[test]
fn dynamic_apps_are_the_ones_with_custom_fields_in_their_domains() {
    let c = builtin();
    let dynamic: BTreeSet<&str> = c
        .iter()
        .filter(|a| a.is_dynamic())
        .map(|a| a.slug.as_str())
        .collect();
    for slug in [
        "zendesk",
        "shopify",
        "salesforce",
        "jira",
        "gitlab_self_managed",
        "mailchimp",
    ] {
        assert!(dynamic.contains(slug), "{slug} should be dynamic");
    }
    for slug in ["stripe", "slack", "github", "openai"] {
        assert!(!dynamic.contains(slug), "{slug} should not be dynamic");
    }
}

// ---- validation errors name the file and the field ----

#[test]
fn unknown_keys_are_refused_with_the_file_name() {
    let e = error("apps/foo.toml", &api_key_app("foo", "colour = \"red\""));
    assert!(e.starts_with("apps/foo.toml: "), "{e}");
    assert!(e.contains("unknown field `colour`"), "{e}");

    let text = api_key_app("foo", "").replace("[credential]", "[credential]\nplace = \"x\"");
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with("apps/foo.toml: ") && e.contains("unknown field `place`"),
        "{e}"
    );

    let e = error(
        "apps/foo.toml",
        &api_key_app("foo", "[connect]\nproxy = false"),
    );
    assert!(
        e.starts_with("apps/foo.toml: ") && e.contains("unknown field `proxy`"),
        "{e}"
    );
}

#[test]
fn connect_proxy_enabled_defaults_to_true_and_can_be_disabled() {
    assert!(app("foo.toml", &api_key_app("foo", "")).proxy_enabled);
    let a = app(
        "foo.toml",
        &api_key_app("foo", "[connect]\nproxy_enabled = false"),
    );
    assert!(!a.proxy_enabled);
}

#[test]
fn bad_slugs_are_refused() {
    let e = error("apps/foo.toml", &api_key_app("bar", ""));
    assert_eq!(
        e,
        r#"apps/foo.toml: slug "bar" does not match the file name"#
    );
    for bad in ["Foo", "-foo", "foo.bar", "föo"] {
        let e = error(&format!("apps/{bad}.toml"), &api_key_app(bad, ""));
        assert!(e.contains(": slug: "), "{bad}: {e}");
    }
    let long = "a".repeat(65);
    let e = error(&format!("{long}.toml"), &api_key_app(&long, ""));
    assert!(e.contains(": slug: "), "{e}");
    assert!(
        app(
            &format!("{}.toml", "a".repeat(64)),
            &api_key_app(&"a".repeat(64), "")
        )
        .slug
        .len()
            == 64
    );
    let e = error("apps/foo.json", &api_key_app("foo", ""));
    assert_eq!(e, "apps/foo.json: file name must be <slug>.toml");
    let e = error("apps/.toml", &api_key_app("apps", ""));
    assert_eq!(e, "apps/.toml: file name must be <slug>.toml");
}

const OAUTH_TABLE: &str = r#"
[oauth]
authorize_url = "https://foo.com/authorize"
token_url = "https://foo.com/token"
scopes = ["read"]
"#;

#[test]
fn oauth_table_is_required_iff_auth_is_oauth2() {
    let oauth_app = |oauth: &str| {
        format!(
            r#"slug = "foo"
name = "Foo"
auth = "oauth2"
allowed_domains = ["api.foo.com"]
[credential]
header = "Authorization"
template = "Bearer {{{{access_token}}}}"
{oauth}"#
        )
    };
    let a = app("foo.toml", &oauth_app(OAUTH_TABLE));
    let spec = a.oauth.unwrap();
    assert_eq!(spec.scope_separator, " ");
    assert_eq!(spec.scopes, vec!["read".to_owned()]);

    let e = error("apps/foo.toml", &oauth_app(""));
    assert_eq!(e, r#"apps/foo.toml: oauth: required when auth = "oauth2""#);

    let e = error(
        "apps/foo.toml",
        &format!("{}{OAUTH_TABLE}", api_key_app("foo", "")),
    );
    assert_eq!(
        e,
        r#"apps/foo.toml: oauth: only allowed when auth = "oauth2""#
    );

    let bad_url = OAUTH_TABLE.replace("https://foo.com/token", "http://foo.com/token");
    let e = error("apps/foo.toml", &oauth_app(&bad_url));
    assert!(
        e.starts_with("apps/foo.toml: oauth.token_url: must be https://"),
        "{e}"
    );

    let bad_scope = OAUTH_TABLE.replace(r#"["read"]"#, r#"["read write"]"#);
    let e = error("apps/foo.toml", &oauth_app(&bad_scope));
    assert!(e.starts_with("apps/foo.toml: oauth.scopes[0]: "), "{e}");

    let reserved = format!("{OAUTH_TABLE}authorize_params = {{ redirect_uri = \"x\" }}\n");
    let e = error("apps/foo.toml", &oauth_app(&reserved));
    assert!(
        e.starts_with("apps/foo.toml: oauth.authorize_params.redirect_uri: "),
        "{e}"
    );

    // An oauth2 credential may only send the access token.
    let e = error(
        "apps/foo.toml",
        &oauth_app(OAUTH_TABLE).replace("{{access_token}}", "{{refresh_token}}"),
    );
    assert!(
        e.starts_with("apps/foo.toml: credential.template: {{refresh_token}}"),
        "{e}"
    );
}

const SUBDOMAIN_FIELD: &str = r#"
[[custom_fields]]
name = "subdomain"
pattern = "^[a-z0-9][a-z0-9-]{0,62}$"
"#;

#[test]
fn templates_must_reference_known_placeholders() {
    // Unknown custom field in base_url.
    let text = format!(
        "{}{SUBDOMAIN_FIELD}",
        api_key_app(
            "foo",
            r#"base_url = "https://{{custom_fields.sub}}.foo.com""#
        )
    )
    .replace(r#"["api.foo.com"]"#, r#"["*.foo.com"]"#);
    let e = error("apps/foo.toml", &text);
    assert_eq!(
        e,
        "apps/foo.toml: base_url: {{custom_fields.sub}} refers to an unknown custom field `sub`"
    );

    // Unknown custom field in allowed_domains.
    let text = api_key_app("foo", "").replace(
        r#"["api.foo.com"]"#,
        r#"["api.foo.com", "{{custom_fields.tenant}}.foo.com"]"#,
    );
    let e = error("apps/foo.toml", &text);
    assert!(e.starts_with("apps/foo.toml: allowed_domains[1]: "), "{e}");
    assert!(e.contains("`tenant`"), "{e}");

    // Credential placeholders are not allowed in URLs.
    let text = api_key_app("foo", r#"base_url = "https://api.foo.com/{{api_key}}""#);
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with("apps/foo.toml: base_url: {{api_key}} is not allowed here"),
        "{e}"
    );

    // A credential field not valid for the auth kind.
    let text = api_key_app("foo", "").replace("{{api_key}}", "{{token}}");
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with(r#"apps/foo.toml: credential.template: {{token}} is not a credential field of auth = "api-key""#),
        "{e}"
    );
    let text = api_key_app("foo", "").replace("api-key", "basic");
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with("apps/foo.toml: credential.template: {{api_key}}"),
        "{e}"
    );

    // Custom fields are not allowed in the credential.
    let text = format!("{}{SUBDOMAIN_FIELD}", api_key_app("foo", ""))
        .replace("{{api_key}}", "{{api_key}} {{custom_fields.subdomain}}");
    let e = error("apps/foo.toml", &text);
    assert!(e.starts_with("apps/foo.toml: credential.template: "), "{e}");

    // Malformed and placeholder-free templates.
    let text = api_key_app("foo", "").replace("{{api_key}}", "{{api_key}");
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with("apps/foo.toml: credential.template: invalid template: "),
        "{e}"
    );
    let text = api_key_app("foo", "").replace("Bearer {{api_key}}", "Bearer secret");
    let e = error("apps/foo.toml", &text);
    assert!(
        e.starts_with("apps/foo.toml: credential.template: must contain"),
        "{e}"
    );

    // A custom app may name its fields freely.
    let text = api_key_app("foo", "")
        .replace("api-key", "custom")
        .replace("Bearer {{api_key}}", "Key {{client_id}}:{{secret}}");
    let a = app("foo.toml", &text);
    assert_eq!(
        a.credential_template_fields(),
        BTreeSet::from(["client_id", "secret"])
    );
}

#[test]
fn invalid_custom_field_patterns_are_refused() {
    let field = |pattern: &str| {
        format!(
            "{}\n[[custom_fields]]\nname = \"subdomain\"\npattern = '{pattern}'\n",
            api_key_app("zendesk", "")
        )
    };
    let e = error("apps/zendesk.toml", &field("^[a-z$"));
    assert!(
        e.starts_with("apps/zendesk.toml: custom_fields[0].pattern: invalid regex: "),
        "{e}"
    );
    let e = error("apps/zendesk.toml", &field("[a-z]+"));
    assert!(
        e.starts_with("apps/zendesk.toml: custom_fields[0].pattern: ") && e.contains("anchored"),
        "{e}"
    );
    let e = error(
        "apps/zendesk.toml",
        &field("^a$").replace("\"subdomain\"", "\"Sub-domain\""),
    );
    assert!(
        e.starts_with("apps/zendesk.toml: custom_fields[0].name: "),
        "{e}"
    );
    let twice = format!(
        "{}[[custom_fields]]\nname = \"subdomain\"\npattern = '^a$'\n",
        field("^a$")
    );
    let e = error("apps/zendesk.toml", &twice);
    assert!(
        e.starts_with("apps/zendesk.toml: custom_fields[1].name: duplicate"),
        "{e}"
    );
}

#[test]
fn patterns_match_whole_values_even_with_alternation() {
    // `^a|b$` would match "ab..." unanchored; the catalog wraps it.
    let f = CustomField::new("x", "^a|b$", None).unwrap();
    assert!(f.matches("a") && f.matches("b"));
    assert!(!f.matches("a.evil.com") && !f.matches("evil.b"));
}

#[test]
fn urls_must_be_absolute_https() {
    let with_base = |url: &str| api_key_app("foo", &format!("base_url = \"{url}\""));
    for bad in [
        "http://api.foo.com",
        "api.foo.com",
        "/v1",
        "ftp://api.foo.com",
        "https://user@api.foo.com",
        "https://api.foo.com/#x",
        "https://api.foo.com/?a=b",
        "https://API.foo.com",
        "http://{{custom_fields.subdomain}}",
    ] {
        let text = format!("{}{SUBDOMAIN_FIELD}", with_base(bad));
        let e = error("apps/foo.toml", &text);
        assert!(e.starts_with("apps/foo.toml: base_url: "), "{bad}: {e}");
    }
    // http:// only to localhost or an IP literal.
    for ok in ["http://localhost:8080", "http://127.0.0.1:9000/api"] {
        let host = if ok.contains("localhost") {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let text = with_base(ok).replace("api.foo.com", host);
        let a = app("foo.toml", &text);
        assert_eq!(a.resolve_base_url(&map(&[])).unwrap().as_deref(), Some(ok));
    }
    let e = error(
        "apps/foo.toml",
        &api_key_app("foo", "docs_url = \"http://docs.foo.com\""),
    );
    assert!(e.starts_with("apps/foo.toml: docs_url: "), "{e}");
    // A static base URL must be inside allowed_domains.
    let e = error("apps/foo.toml", &with_base("https://api.bar.com"));
    assert_eq!(
        e,
        r#"apps/foo.toml: base_url: host "api.bar.com" is not in allowed_domains"#
    );
}

#[test]
fn allowed_domains_must_be_a_non_empty_list_of_hosts() {
    let text = api_key_app("foo", "").replace(r#"["api.foo.com"]"#, "[]");
    assert_eq!(
        error("apps/foo.toml", &text),
        "apps/foo.toml: allowed_domains: must not be empty"
    );
    for bad in [
        "https://api.foo.com",
        "api.foo.com:443",
        "api.foo.com/x",
        "*.com",
        "*",
        "Api.foo.com",
        "a..foo.com",
    ] {
        let text = api_key_app("foo", "").replace(r#"["api.foo.com"]"#, &format!("[\"{bad}\"]"));
        let e = error("apps/foo.toml", &text);
        assert!(
            e.starts_with("apps/foo.toml: allowed_domains[0]: "),
            "{bad}: {e}"
        );
    }
}

#[test]
fn credential_needs_exactly_one_valid_location() {
    let text = api_key_app("foo", "").replace("[credential]", "[credential]\nquery = \"key\"");
    let e = error("apps/foo.toml", &text);
    assert_eq!(
        e,
        "apps/foo.toml: credential: exactly one of `header` or `query` is required"
    );
    let text = api_key_app("foo", "").replace("header = \"Authorization\"\n", "");
    let e = error("apps/foo.toml", &text);
    assert_eq!(
        e,
        "apps/foo.toml: credential: exactly one of `header` or `query` is required"
    );
    let text = api_key_app("foo", "").replace("\"Authorization\"", "\"Bad Header\"");
    assert!(error("apps/foo.toml", &text).starts_with("apps/foo.toml: credential.header: "));
    let text = api_key_app("foo", "").replace("\"Authorization\"", "\"Host\"");
    assert!(error("apps/foo.toml", &text).starts_with("apps/foo.toml: credential.header: "));
    let text = api_key_app("foo", "").replace("header = \"Authorization\"", "query = \"a&b\"");
    assert!(error("apps/foo.toml", &text).starts_with("apps/foo.toml: credential.query: "));
}

#[test]
fn duplicate_slugs_in_one_source_set_are_refused() {
    let text = api_key_app("foo", "");
    let e = Catalog::from_sources(&[
        ("a/foo.toml".to_owned(), text.clone()),
        ("b/foo.toml".to_owned(), text),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        r#"b/foo.toml: slug "foo" is already defined by a/foo.toml"#
    );
}

// ---- templated URLs ----

#[test]
fn zendesk_base_url_renders_a_good_subdomain() {
    let z = zendesk();
    assert!(z.is_dynamic());
    assert_eq!(
        z.resolve_base_url(&map(&[("subdomain", "acme-support")]))
            .unwrap()
            .as_deref(),
        Some("https://acme-support.zendesk.com/api/v2")
    );
}

#[test]
fn zendesk_base_url_refuses_bad_subdomains() {
    let z = zendesk();
    for bad in [
        "evil.com/x",
        "a.b",
        "a@b",
        "",
        "a:443",
        "a b",
        "a?",
        "a#",
        "ACME",
        "evil.com%2f",
    ] {
        let e = z.resolve_base_url(&map(&[("subdomain", bad)])).unwrap_err();
        assert_eq!(
            e,
            AppError::CustomFieldMismatch {
                app: "zendesk".into(),
                field: "subdomain".into(),
                pattern: "^[a-z0-9][a-z0-9-]{0,62}$".into(),
            },
            "{bad:?}"
        );
        // The error names the field, never the value.
        if !bad.is_empty() {
            assert!(!e.to_string().contains(bad), "{e}");
        }
    }
    let e = z.resolve_base_url(&map(&[])).unwrap_err();
    assert_eq!(
        e,
        AppError::MissingCustomField {
            app: "zendesk".into(),
            field: "subdomain".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "app zendesk: custom field `subdomain` is missing"
    );
}

#[test]
fn a_lax_pattern_still_cannot_inject_into_a_host() {
    // An operator's pattern that accepts anything: the host check guards.
    let text = r#"slug = "lax"
name = "Lax"
auth = "bearer"
base_url = "https://{{custom_fields.sub}}.lax.com/{{custom_fields.path}}"
allowed_domains = ["{{custom_fields.sub}}.lax.com"]
[credential]
header = "Authorization"
template = "Bearer {{token}}"
[[custom_fields]]
name = "sub"
pattern = "^.*$"
[[custom_fields]]
name = "path"
pattern = "^.*$"
"#;
    let a = app("lax.toml", text);
    for bad in [
        "evil.com/x",
        "evil.com?",
        "evil.com#",
        "u@evil.com",
        "evil.com:1",
        "a b",
        "A",
        "",
        "a..b",
    ] {
        let fields = map(&[("sub", bad), ("path", "v1")]);
        let err = a.resolve_base_url(&fields).unwrap_err();
        assert!(
            matches!(
                err,
                AppError::UnsafeCustomField { .. } | AppError::InvalidUrl { .. }
            ),
            "{bad:?}: {err:?}"
        );
        assert!(a.allows_host("x.lax.com", &fields).is_err(), "{bad:?}");
    }
    // Dots are host characters: `a.b` is refused only by a pattern.
    let ok = map(&[("sub", "a.b"), ("path", "v1")]);
    assert_eq!(
        a.resolve_base_url(&ok).unwrap().as_deref(),
        Some("https://a.b.lax.com/v1")
    );
    for bad_path in ["v1?x=1", "v1#f", "v 1", ""] {
        let fields = map(&[("sub", "a"), ("path", bad_path)]);
        assert!(matches!(
            a.resolve_base_url(&fields),
            Err(AppError::UnsafeCustomField { .. })
        ));
    }
}

// ---- allows_host ----

#[test]
fn allows_host_exact_wildcard_and_templated() {
    let c = builtin();
    let none = map(&[]);
    let stripe = c.get("stripe").unwrap();
    assert!(stripe.allows_host("api.stripe.com", &none).unwrap());
    assert!(!stripe.allows_host("stripe.com", &none).unwrap());
    assert!(
        !stripe
            .allows_host("api.stripe.com.evil.com", &none)
            .unwrap()
    );
    assert!(!stripe.allows_host("evilapi.stripe.com", &none).unwrap());
    assert!(!stripe.allows_host("API.STRIPE.COM", &none).unwrap());

    let slack = c.get("slack").unwrap();
    assert!(slack.allows_host("slack.com", &none).unwrap());
    assert!(slack.allows_host("files.slack.com", &none).unwrap());
    assert!(slack.allows_host("a.b.slack.com", &none).unwrap());
    assert!(!slack.allows_host("evilslack.com", &none).unwrap());
    assert!(!slack.allows_host("slack.com.evil.com", &none).unwrap());
    assert!(!slack.allows_host(".slack.com", &none).unwrap());

    let z = zendesk();
    let acme = map(&[("subdomain", "acme")]);
    assert!(z.allows_host("acme.zendesk.com", &acme).unwrap());
    assert!(!z.allows_host("other.zendesk.com", &acme).unwrap());
    assert!(!z.allows_host("zendesk.com", &acme).unwrap());
    assert!(!z.allows_host("zendesk.com.evil.com", &acme).unwrap());
    assert!(!z.allows_host("evilzendesk.com", &acme).unwrap());
    assert!(!z.allows_host("acme.zendesk.com.evil.com", &acme).unwrap());
    assert!(!z.allows_host("acme.zendesk.com:443", &acme).unwrap());
    // A templated rule with a bad or missing field is an error, not a yes.
    assert!(matches!(
        z.allows_host("acme.zendesk.com", &none),
        Err(AppError::MissingCustomField { .. })
    ));
    assert!(matches!(
        z.allows_host("evil.com", &map(&[("subdomain", "evil.com/x")])),
        Err(AppError::CustomFieldMismatch { .. })
    ));
}

#[test]
fn templated_wildcard_rules() {
    let text = format!(
        "{}{SUBDOMAIN_FIELD}",
        api_key_app("foo", "").replace(
            r#"["api.foo.com"]"#,
            r#"["api.foo.com", "*.{{custom_fields.subdomain}}.foo.com"]"#
        )
    );
    let a = app("foo.toml", &text);
    assert!(a.is_dynamic());
    let f = map(&[("subdomain", "acme")]);
    assert!(a.allows_host("api.foo.com", &f).unwrap());
    // Static rules win before fields are looked at.
    assert!(a.allows_host("api.foo.com", &map(&[])).unwrap());
    assert!(a.allows_host("x.acme.foo.com", &f).unwrap());
    assert!(!a.allows_host("acme.foo.com", &f).unwrap());
    assert!(!a.allows_host("x.other.foo.com", &f).unwrap());
}

// ---- render_credential ----

#[test]
fn render_credential_for_each_auth_kind() {
    let c = builtin();
    let header = |h: &str| CredentialLocation::Header(h.to_owned());

    let stripe = c.get("stripe").unwrap();
    assert_eq!(
        stripe
            .render_credential(&map(&[("api_key", "sk_test_1")]))
            .unwrap(),
        (header("Authorization"), "Bearer sk_test_1".to_owned())
    );
    let anthropic = c.get("anthropic").unwrap();
    assert_eq!(
        anthropic
            .render_credential(&map(&[("api_key", "k")]))
            .unwrap(),
        (header("x-api-key"), "k".to_owned())
    );

    let openai = c.get("openai").unwrap();
    assert_eq!(
        openai.render_credential(&map(&[("token", "t")])).unwrap(),
        (header("Authorization"), "Bearer t".to_owned())
    );

    let twilio = c.get("twilio").unwrap();
    let (loc, value) = twilio
        .render_credential(&map(&[("username", "AC123"), ("password", "s3cr:et")]))
        .unwrap();
    assert_eq!(loc, header("Authorization"));
    let expected = base64::engine::general_purpose::STANDARD.encode("AC123:s3cr:et");
    assert_eq!(value, format!("Basic {expected}"));
    assert_eq!(value, "Basic QUMxMjM6czNjcjpldA==");
    assert_eq!(
        twilio.credential_template_fields(),
        BTreeSet::from(["password", "username"])
    );

    let github = c.get("github").unwrap();
    let creds = map(&[
        ("access_token", "gho_x"),
        ("refresh_token", "r"),
        ("expires_at", "1"),
    ]);
    assert_eq!(
        github.render_credential(&creds).unwrap(),
        (header("Authorization"), "Bearer gho_x".to_owned())
    );

    let discord = c.get("discord").unwrap();
    assert_eq!(
        discord
            .render_credential(&map(&[("token", "abc")]))
            .unwrap(),
        (header("Authorization"), "Bot abc".to_owned())
    );
    let trello = c.get("trello").unwrap();
    assert_eq!(
        trello
            .render_credential(&map(&[("api_key", "k"), ("token", "t")]))
            .unwrap()
            .1,
        r#"OAuth oauth_consumer_key="k", oauth_token="t""#
    );

    let pipedrive = c.get("pipedrive").unwrap();
    assert_eq!(
        pipedrive
            .render_credential(&map(&[("api_key", "a b&c")]))
            .unwrap(),
        (
            CredentialLocation::Query("api_token".to_owned()),
            "a b&c".to_owned()
        )
    );
}

#[test]
fn render_credential_names_the_missing_field() {
    let c = builtin();
    let e = c
        .get("github")
        .unwrap()
        .render_credential(&map(&[("refresh_token", "r")]))
        .unwrap_err();
    assert_eq!(
        e,
        AppError::MissingCredential {
            app: "github".into(),
            field: "access_token".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "app github: credential field `access_token` is missing"
    );
    let e = c
        .get("twilio")
        .unwrap()
        .render_credential(&map(&[("username", "AC1")]))
        .unwrap_err();
    assert_eq!(
        e,
        AppError::MissingCredential {
            app: "twilio".into(),
            field: "password".into()
        }
    );
    let e = c
        .get("trello")
        .unwrap()
        .render_credential(&map(&[("api_key", "k")]))
        .unwrap_err();
    assert_eq!(
        e,
        AppError::MissingCredential {
            app: "trello".into(),
            field: "token".into()
        }
    );
    // Empty counts as missing.
    let e = c
        .get("stripe")
        .unwrap()
        .render_credential(&map(&[("api_key", "")]))
        .unwrap_err();
    assert_eq!(
        e,
        AppError::MissingCredential {
            app: "stripe".into(),
            field: "api_key".into()
        }
    );
}

#[test]
fn render_credential_refuses_header_injection_and_colon_usernames() {
    let c = builtin();
    let e = c
        .get("stripe")
        .unwrap()
        .render_credential(&map(&[("api_key", "sk\r\nX-Evil: 1")]))
        .unwrap_err();
    assert!(matches!(e, AppError::InvalidCredential { ref field, .. } if field == "api_key"));
    assert!(!e.to_string().contains("sk"), "{e}");
    let e = c
        .get("twilio")
        .unwrap()
        .render_credential(&map(&[("username", "a:b"), ("password", "p")]))
        .unwrap_err();
    assert!(matches!(e, AppError::InvalidCredential { ref field, .. } if field == "username"));
}

#[test]
fn auth_kind_credential_fields() {
    let names = |k: AuthKind| {
        k.credential_fields()
            .iter()
            .map(|f| (f.name, f.required))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(AuthKind::ApiKey), [("api_key", true)]);
    assert_eq!(names(AuthKind::Bearer), [("token", true)]);
    assert_eq!(
        names(AuthKind::Basic),
        [("username", true), ("password", true)]
    );
    assert_eq!(
        names(AuthKind::OAuth2),
        [
            ("access_token", true),
            ("refresh_token", false),
            ("expires_at", false)
        ]
    );
    assert!(names(AuthKind::Custom).is_empty());
}

#[test]
fn app_credential_fields_follow_the_auth_kind_or_the_custom_template() {
    let c = builtin();
    let fields = |slug: &str| {
        c.get(slug)
            .unwrap()
            .credential_fields()
            .iter()
            .map(|f| (f.name.to_owned(), f.required, f.secret))
            .collect::<Vec<_>>()
    };
    let own = |list: &[(&str, bool, bool)]| {
        list.iter()
            .map(|(n, r, s)| (n.to_string(), *r, *s))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fields("github"),
        own(&[
            ("access_token", true, true),
            ("refresh_token", false, true),
            ("expires_at", false, false)
        ])
    );
    assert_eq!(
        fields("zendesk"),
        own(&[("username", true, false), ("password", true, true)])
    );
    // Custom: the names the template reads, all required.
    assert_eq!(
        fields("trello"),
        own(&[("api_key", true, true), ("token", true, true)])
    );
}

#[test]
fn check_credential_names_names_missing_and_unknown_fields() {
    let c = builtin();
    let github = c.get("github").unwrap();
    github.check_credential_names(["access_token"]).unwrap();
    github
        .check_credential_names(["access_token", "refresh_token", "expires_at"])
        .unwrap();
    let e = github
        .check_credential_names(["refresh_token", "api_key"])
        .unwrap_err();
    assert_eq!(e.missing, ["access_token"]);
    assert_eq!(e.unknown, ["api_key"]);
    assert_eq!(
        e.to_string(),
        "app github (oauth2 auth): missing credential field(s) access_token; unknown \
         credential field(s) api_key (it takes access_token, refresh_token, expires_at)"
    );
    let e = c
        .get("zendesk")
        .unwrap()
        .check_credential_names(["username"])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "app zendesk (basic auth): missing credential field(s) password"
    );
    let e = c
        .get("trello")
        .unwrap()
        .check_credential_names(["api_key", "token", "x\ny"])
        .unwrap_err();
    assert!(e.missing.is_empty());
    assert_eq!(e.unknown, ["x\\ny"], "escaped");
    let long = "n".repeat(100);
    let e = c
        .get("stripe")
        .unwrap()
        .check_credential_names(["api_key", long.as_str()])
        .unwrap_err();
    assert_eq!(e.unknown, [format!("{}...", "n".repeat(64))]);
}

#[test]
fn validate_custom_fields_checks_all_declared_fields() {
    let z = zendesk();
    z.validate_custom_fields(&map(&[("subdomain", "acme")]))
        .unwrap();
    assert!(matches!(
        z.validate_custom_fields(&map(&[])),
        Err(AppError::MissingCustomField { .. })
    ));
    assert!(matches!(
        z.validate_custom_fields(&map(&[("subdomain", "acme"), ("other", "x")])),
        Err(AppError::UnknownCustomField { .. })
    ));
}

// ---- operator directory ----

#[test]
fn operator_dir_overrides_a_builtin_slug() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = r#"slug = "stripe"
name = "Stripe (mock)"
auth = "api-key"
base_url = "http://127.0.0.1:9999/v1"
allowed_domains = ["127.0.0.1"]
[credential]
header = "Authorization"
template = "Bearer {{api_key}}"
"#;
    std::fs::write(dir.path().join("stripe.toml"), stripe).unwrap();
    std::fs::write(
        dir.path().join("internal.toml"),
        api_key_app("internal", ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not an app").unwrap();

    let mut catalog = builtin();
    let before = catalog.len();
    catalog.load_dir(dir.path()).unwrap();
    assert_eq!(catalog.len(), before + 1);
    let s = catalog.get("stripe").unwrap();
    assert_eq!(s.name, "Stripe (mock)");
    assert_eq!(
        s.resolve_base_url(&map(&[])).unwrap().as_deref(),
        Some("http://127.0.0.1:9999/v1")
    );
    assert!(s.allows_host("127.0.0.1", &map(&[])).unwrap());
    assert!(catalog.get("internal").is_some());
    assert!(catalog.origin("stripe").unwrap().ends_with("stripe.toml"));
    assert!(catalog.get("zendesk").is_some());
}

#[test]
fn operator_dir_errors_name_the_file_and_leave_the_catalog_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), api_key_app("good", "")).unwrap();
    std::fs::write(dir.path().join("bad.toml"), api_key_app("other", "")).unwrap();
    let mut catalog = builtin();
    let before = catalog.len();
    let e = catalog.load_dir(dir.path()).unwrap_err().to_string();
    let path = dir.path().join("bad.toml");
    assert_eq!(
        e,
        format!(
            "{}: slug \"other\" does not match the file name",
            path.display()
        )
    );
    assert_eq!(catalog.len(), before);
    assert!(catalog.get("good").is_none());

    let missing = dir.path().join("nope");
    let e = catalog.load_dir(&missing).unwrap_err();
    assert!(matches!(e, CatalogError::Io { .. }));
    assert!(e.to_string().starts_with(&missing.display().to_string()));
}
