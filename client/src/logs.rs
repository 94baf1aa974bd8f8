//! A run's log as it is written: [`Client::stream_logs`] reads the
//! Server-Sent Events of `GET …/runs/{id}/logs?follow=1` and yields
//! [`LogEvent`]s until the run ends.
//!
//! A stream that breaks before the end (a proxy's timeout, a server
//! restart) is opened again with `Last-Event-ID`, up to [`REOPEN`] times,
//! so no line is yielded twice. An event larger than [`MAX_EVENT`] is an
//! error: the server's log cap bounds a line, this bounds what a broken
//! server can make the client hold.

use std::collections::VecDeque;
use std::time::Duration;

use crate::runs::LogLine;
use crate::{Client, Error};

/// Times a broken stream is opened again before giving up.
pub const REOPEN: u32 = 5;
/// Longest event accepted from the server, in bytes.
pub const MAX_EVENT: usize = 4 << 20;

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// One log line; `raw` is its JSON as the server sent it.
    Line { line: LogLine, raw: String },
    /// The run ended with this status (`succeeded`, `failed`, `cancelled`, …).
    End { status: String },
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

/// Splits complete events off the front of `buf` (the SSE wire format:
/// `field: value` lines, a blank line ends an event, `:` lines are
/// comments).
fn take_events(buf: &mut String) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let normalized = buf.replace("\r\n", "\n");
        if normalized.len() != buf.len() {
            *buf = normalized;
        }
        let Some(end) = buf.find("\n\n") else {
            return events;
        };
        let block: String = buf.drain(..end + 2).collect();
        let mut event = Event::default();
        let mut data = Vec::new();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = value.to_owned(),
                "id" => event.id = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        if data.is_empty() && event.event.is_empty() {
            continue; // a keep-alive comment
        }
        event.data = data.join("\n");
        events.push(event);
    }
}

/// The log of one run as it is written; see the module's docs.
pub struct LogStream {
    client: Client,
    project: String,
    run: String,
    response: Option<reqwest::Response>,
    last: Option<String>,
    reopened: u32,
    buf: String,
    /// Bytes after the last newline: a chunk may end inside a character.
    bytes: Vec<u8>,
    pending: VecDeque<Event>,
    ended: bool,
}

impl Client {
    /// Follows run `id`'s log until the run ends.
    pub fn stream_logs(&self, project: &str, id: &str) -> LogStream {
        LogStream {
            client: self.clone(),
            project: project.to_owned(),
            run: id.to_owned(),
            response: None,
            last: None,
            reopened: 0,
            buf: String::new(),
            bytes: Vec::new(),
            pending: VecDeque::new(),
            ended: false,
        }
    }
}

impl LogStream {
    /// The next event; `None` after [`LogEvent::End`].
    pub async fn next(&mut self) -> Result<Option<LogEvent>, Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(event) = self.pending.pop_front() {
                match event.event.as_str() {
                    "log" => {
                        if let Some(id) = event.id {
                            self.last = Some(id);
                        }
                        let line: LogLine = serde_json::from_str(&event.data)
                            .map_err(|e| self.unexpected(format!("unreadable log event: {e}")))?;
                        return Ok(Some(LogEvent::Line {
                            line,
                            raw: event.data,
                        }));
                    }
                    "end" => {
                        let end: serde_json::Value =
                            serde_json::from_str(&event.data).unwrap_or_default();
                        self.ended = true;
                        let status = end["status"].as_str().unwrap_or("unknown").to_owned();
                        return Ok(Some(LogEvent::End { status }));
                    }
                    _ => continue,
                }
            }
            let response = match self.response.as_mut() {
                Some(r) => r,
                None => {
                    let r = self
                        .client
                        .follow_logs(&self.project, &self.run, self.last.as_deref())
                        .await?;
                    self.buf.clear();
                    self.bytes.clear();
                    self.response.insert(r)
                }
            };
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.bytes.extend_from_slice(&chunk);
                    if let Some(nl) = self.bytes.iter().rposition(|&b| b == b'\n') {
                        let rest = self.bytes.split_off(nl + 1);
                        self.buf.push_str(&String::from_utf8_lossy(&self.bytes));
                        self.bytes = rest;
                    }
                    self.pending.extend(take_events(&mut self.buf));
                    if self.buf.len() + self.bytes.len() > MAX_EVENT {
                        return Err(self.unexpected("an event larger than 4 MiB".into()));
                    }
                }
                Ok(None) | Err(_) => {
                    self.response = None;
                    self.reopened += 1;
                    if self.reopened > REOPEN {
                        return Err(self.unexpected(format!(
                            "the log stream of run {} kept breaking before the run ended",
                            self.run
                        )));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn unexpected(&self, detail: String) -> Error {
        Error::Stream {
            server: self.client.base_url().to_owned(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_across_chunks() {
        let mut buf = String::from(": keep-alive\n\nevent: log\nid: 4294967296\ndata: {\"a\":1}\n");
        assert!(take_events(&mut buf).is_empty());
        buf.push_str("\r\nevent: end\r\ndata: {\"status\":\"failed\"}\r\n\r\n");
        let events = take_events(&mut buf);
        assert_eq!(
            events,
            [
                Event {
                    event: "log".into(),
                    id: Some("4294967296".into()),
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: "end".into(),
                    id: None,
                    data: "{\"status\":\"failed\"}".into()
                },
            ]
        );
        assert!(buf.is_empty());
    }
}
