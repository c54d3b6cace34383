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
