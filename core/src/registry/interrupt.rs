//! Cancellation for requests in flight: a connector that wraps every connection so that a
//! wait for the registry's answer (or the next bytes of a body) wakes up a few times a second
//! to look at the [`CancelToken`], instead of sleeping through the whole `--timeout`.
//!
//! The wait is cut into slices of [`SLICE`]; a slice that ends without data is retried until
//! the request's own timeout is spent, so timeouts behave as before. Writes are not sliced (a
//! partly written buffer cannot be retried): a push checks the token between the buffers it
//! sends.

use crate::cancel::CancelToken;
use crate::error::Error;
use std::fmt;
use std::time::Instant;
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// How long one wait lasts before the token is looked at again.
const SLICE: std::time::Duration = std::time::Duration::from_millis(200);

/// Wraps the connections another connector made in an [`Interruptible`] transport.
pub(super) struct InterruptConnector {
    pub(super) cancel: CancelToken,
}

impl fmt::Debug for InterruptConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for InterruptConnector {
    type Out = Interruptible<In>;

    fn connect(&self, _details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Interruptible { inner, cancel: self.cancel.clone() }))
    }
}

/// A transport whose reads give up soon after the token is cancelled.
pub(super) struct Interruptible<T> {
    inner: T,
    cancel: CancelToken,
}

impl<T: fmt::Debug> fmt::Debug for Interruptible<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interruptible").field("inner", &self.inner).finish_non_exhaustive()
    }
}

/// The error a cancelled wait ends with: an I/O error carrying [`Error::Cancelled`], which
/// readers unwrap. (Not `ErrorKind::Interrupted`: `read_to_end` and `io::copy` retry that.)
fn cancelled() -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(Error::Cancelled))
}

impl<T: Transport> Transport for Interruptible<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let budget = timeout.for_read();
        let deadline = match budget.after {
            UreqDuration::Exact(after) => Instant::now().checked_add(after),
            UreqDuration::NotHappening => None,
        };
        loop {
            if self.cancel.is_cancelled() {
                return Err(cancelled());
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(ureq::Error::Timeout(budget.reason));
            }
            let slice = NextTimeout {
                after: UreqDuration::Exact(left.map_or(SLICE, |l| l.min(SLICE))),
                reason: budget.reason,
                per_read: None,
                per_write: timeout.per_write,
            };
            match self.inner.await_input(slice) {
                Err(ureq::Error::Timeout(_)) => continue,
                Err(e) if self.cancel.is_cancelled() => {
                    drop(e);
                    return Err(cancelled());
                }
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Client, RegistryOptions};
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A registry on loopback that answers `/v2/`, starts a blob body and never finishes it,
    /// and never answers a manifest request: every connection stays open for 30 s.
    fn stalling_registry() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        addr
    }

    fn serve(mut stream: TcpStream) {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).is_err() || first[0] == 0x16 {
            return; // a TLS ClientHello: no TLS here, the client falls back to plain HTTP
        }
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line.trim().is_empty() => break,
                    Ok(_) => head.push_str(&line),
                }
            }
            if head.starts_with("GET /v2/ ") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            } else if head.contains("/blobs/") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
                std::thread::sleep(Duration::from_secs(30));
                return;
            } else {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
        }
    }

    fn client(addr: &str, cancel: &CancelToken, timeout: Duration) -> std::sync::Arc<Client> {
        let options = RegistryOptions {
            cancel: cancel.clone(),
            timeout: Some(timeout),
            skip_keychain: true,
            ..Default::default()
        };
        Client::new(addr, &options).unwrap()
    }

    fn cancel_after(cancel: &CancelToken, after: Duration) {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            cancel.cancel();
        });
    }

    #[test]
    fn cancelling_ends_a_wait_for_an_answer_long_before_the_timeout() {
        let addr = stalling_registry();
        let cancel = CancelToken::new();
        let client = client(&addr, &cancel, Duration::from_secs(30));
        cancel_after(&cancel, Duration::from_millis(300));
        let started = Instant::now();
        let err = client.get_manifest("team/app", "1").unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    #[test]
    fn cancelling_ends_a_body_read_that_waits_for_bytes() {
        let addr = stalling_registry();
        let cancel = CancelToken::new();
        let client = client(&addr, &cancel, Duration::from_secs(30));
        let mut body = client.get_blob("team/app", &format!("sha256:{}", "a".repeat(64))).unwrap();
        cancel_after(&cancel, Duration::from_millis(300));
        let started = Instant::now();
        let err = std::io::copy(&mut body, &mut std::io::sink()).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::Cancelled)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    #[test]
    fn without_cancelling_the_timeout_still_applies() {
        let addr = stalling_registry();
        let client = client(&addr, &CancelToken::new(), Duration::from_millis(1500));
        let started = Instant::now();
        let err = client.get_manifest("team/app", "1").unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(1400) && waited < Duration::from_secs(10), "{waited:?}");
    }
}
