//! The shared client must ignore proxy environment variables: a proxy
//! resolves and dials for us, which would bypass every egress check.
//!
//! Its own test binary with a single test, because it sets process
//! environment variables, which is only sound while no other thread reads
//! the environment.

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::http::client::{ClientConfig, build_client};
use airlock_host_api::http::egress::{EgressPolicy, parse_range};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn answer_once(listener: TcpListener, body: &'static str) -> bool {
    let Ok(Ok((mut sock, _))) =
        tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
    else {
        return false;
    };
    let mut buf = vec![0u8; 4096];
    let _ = sock.read(&mut buf).await;
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    true
}

#[test]
fn egress_client_ignores_env_proxy() {
    let std_proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", std_proxy.local_addr().unwrap());
    // SAFETY: this binary has one test and no thread has started yet that
    // reads the environment; the runtime is built afterwards.
    unsafe {
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            std::env::set_var(var, &proxy_url);
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        std_proxy.set_nonblocking(true).unwrap();
        let proxy = TcpListener::from_std(std_proxy).unwrap();
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = origin.local_addr().unwrap().port();
        let proxy_task = tokio::spawn(answer_once(proxy, "proxied"));
        let origin_task = tokio::spawn(answer_once(origin, "direct"));

        let policy = Arc::new(EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]));
        let client = build_client(policy, &ClientConfig::default()).unwrap();
        let body = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "direct", "the request went through the env proxy");
        assert!(origin_task.await.unwrap());
        proxy_task.abort();
    });
}
