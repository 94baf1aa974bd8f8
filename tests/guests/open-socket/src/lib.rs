use std::io::Write;
use std::net::{TcpStream, UdpSocket};

use airlock_sdk::Error;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    /// e.g. "127.0.0.1:8080": a listener the test watches.
    addr: String,
}

fn run(input: Input) -> Result<Value, Error> {
    let mut leaked = Vec::new();
    let mut denied = Vec::new();
    match TcpStream::connect(&input.addr) {
        Ok(mut s) => {
            let _ = s.write_all(b"escaped");
            leaked.push("tcp connect".to_string());
        }
        Err(e) => denied.push(format!("tcp connect: {e}")),
    }
    match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"escaped", &input.addr)) {
        Ok(_) => leaked.push("udp send".to_string()),
        Err(e) => denied.push(format!("udp: {e}")),
    }
    match std::net::ToSocketAddrs::to_socket_addrs("localhost:80") {
        Ok(_) => leaked.push("dns lookup".to_string()),
        Err(e) => denied.push(format!("dns: {e}")),
    }
    if leaked.is_empty() {
        Err(Error::new(format!("denied: {}", denied.join("; "))))
    } else {
        Ok(json!({ "leaked": leaked }))
    }
}

airlock_sdk::step!(run);
