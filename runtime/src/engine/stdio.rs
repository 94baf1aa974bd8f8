//! Captures a guest's WASI stdout/stderr into the run's [`LogSink`].
//!
//! A write past the log cap fails with a trap carrying
//! [`HostLimitError::Output`], so a flooding guest is stopped rather than
//! left spinning on a closed stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_host_api::HostLimitError;
use airlock_host_api::log::{LogSink, StdStream};
use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Room advertised to the guest per `check-write`.
const WRITE_BUDGET_HINT: usize = 64 * 1024;

/// A WASI output stream that lands in the run's log.
#[derive(Clone)]
pub struct CapturedStream {
    sink: Arc<LogSink>,
    stream: StdStream,
}

impl CapturedStream {
    pub fn new(sink: Arc<LogSink>, stream: StdStream) -> Self {
        Self { sink, stream }
    }

    fn write_bytes(&self, bytes: &[u8]) -> Result<(), HostLimitError> {
        self.sink.write_stream(self.stream, bytes)
    }
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

fn trap(e: HostLimitError) -> StreamError {
    StreamError::Trap(wasmtime::Error::new(e))
}

#[async_trait::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes).map_err(trap)
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        if self.sink.exceeded() {
            return Err(trap(HostLimitError::Output {
                cap: self.sink.bytes_used(),
            }));
        }
        Ok(WRITE_BUDGET_HINT)
    }
}

impl AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.write_bytes(buf)
                .map(|()| buf.len())
                .map_err(io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
