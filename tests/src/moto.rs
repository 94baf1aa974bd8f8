//! `moto` in server mode (PyPI `moto[server]`): a local AWS that checks
//! SigV4 signatures, so the host's signer is tested against a server that
//! verifies them as AWS does, not against itself.
//!
//! moto checks credentials and signatures only after its first
//! `INITIAL_NO_AUTH_ACTION_COUNT` actions; [`Moto::start`] spends exactly
//! those on creating an IAM user with an access key and an allow-all
//! policy, so every later request must be signed with that key.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use airlock_host_api::http::sign::sigv4::{self, AwsCredentials, SigningParams};
use zeroize::Zeroizing;

/// The actions moto serves before it checks signatures (the setup below).
const SETUP_ACTIONS: usize = 3;

/// A running `moto_server`; killed (by its own pid) when dropped.
pub struct Moto {
    pub addr: SocketAddr,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto on a free loopback port and creates the test user.
    /// `None` (after printing why) when `moto_server` is not installed;
    /// `.ci/run` installs it, so CI always runs these tests.
    pub async fn start() -> Option<Moto> {
        if Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!(
                "SKIPPED: moto_server is not installed (pip install 'moto[server]'); \
                 the SigV4 tests against a signature-checking server did not run"
            );
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_ACTIONS.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut moto = Moto {
            addr,
            access_key_id: String::new(),
            secret_access_key: Zeroizing::new(String::new()),
            child,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The setup actions: moto does not check these signatures yet.
        let setup = AwsCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: Zeroizing::new("setup".into()),
            session_token: None,
        };
        moto.iam(
            &setup,
            "Action=CreateUser&UserName=airlock&Version=2010-05-08",
        )
        .await;
        let key = moto
            .iam(
                &setup,
                "Action=CreateAccessKey&UserName=airlock&Version=2010-05-08",
            )
            .await;
        moto.access_key_id = between(&key, "<AccessKeyId>", "</AccessKeyId>");
        moto.secret_access_key =
            Zeroizing::new(between(&key, "<SecretAccessKey>", "</SecretAccessKey>"));
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let body = format!(
            "Action=PutUserPolicy&UserName=airlock&PolicyName=all&Version=2010-05-08&PolicyDocument={}",
            url::form_urlencoded::byte_serialize(policy.as_bytes()).collect::<String>()
        );
        moto.iam(&setup, &body).await;
        Some(moto)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One IAM query action, signed with `creds`; the response body.
    async fn iam(&self, creds: &AwsCredentials, body: &str) -> String {
        let url = url::Url::parse(&self.url("/")).unwrap();
        let headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )];
        let params = SigningParams::for_service("us-east-1", "iam", SystemTime::now());
        let added = sigv4::sign("POST", &url, &headers, body.as_bytes(), creds, &params).unwrap();
        let mut request = crate::serve::client()
            .post(url)
            .body(body.to_string())
            .header("content-type", "application/x-www-form-urlencoded");
        for (n, v) in added {
            request = request.header(n, v);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "moto IAM setup: {status} {text}");
        text
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).expect(start) + start.len();
    let to = from + text[from..].find(end).expect(end);
    text[from..to].to_string()
}
