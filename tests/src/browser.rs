//! Headless Chromium for the Connect browser tests, driven over WebDriver
//! (fantoccini) through Debian's `chromedriver`, which the test starts
//! itself on a free loopback port and stops when done.
//!
//! Missing Chromium is a failure with the command that installs it, never
//! a silent skip: CI (`.ci/run`) installs `chromium` and `chromium-driver`,
//! and a browser test that does not run proves nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Where Debian puts them; `AIRLOCK_CHROMIUM` and `AIRLOCK_CHROMEDRIVER`
/// name others.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to get where a test expects it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A headless Chromium session; its chromedriver (and the browser under
/// it) are killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "the browser tests need Chromium and its WebDriver: {} is missing. Install them with \
         `apt-get install -y chromium chromium-driver` (CI's .ci/run does), or point {env} at them.",
        path.display()
    );
    path
}

impl Browser {
    pub async fn start() -> Browser {
        let chromium = binary("AIRLOCK_CHROMIUM", CHROMIUM);
        let chromedriver = binary("AIRLOCK_CHROMEDRIVER", CHROMEDRIVER);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(&chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: dropping the browser ends chromedriver and
        // every Chromium process it started, and nothing else.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=960,860",
                    "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&url).await {
                Ok(c) => break c,
                Err(e) if started.elapsed() < PATIENCE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver on {url} gave no session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// Waits until the address satisfies `ok`; returns it.
    pub async fn wait_for_url(&self, what: &str, ok: impl Fn(&url::Url) -> bool) -> url::Url {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if ok(&url) {
                return url;
            }
            if started.elapsed() > PATIENCE {
                let page = self.client.source().await.unwrap_or_default();
                panic!("waited for {what}; still at {url}: {page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element at `css`, once it is there.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Saves a PNG of the page at `path` (its directory is made).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session; the driver goes with the drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            let group = i32::try_from(self.driver.id()).expect("a pid");
            // SAFETY: signals the process group this test created (and
            // nothing else); no memory is involved.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
            let _ = self.driver.wait();
        }
    }
}

/// `target/test-artifacts/NAME` of the workspace (kept by CI).
pub fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("test-artifacts")
        .join(name)
}
