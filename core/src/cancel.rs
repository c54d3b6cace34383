//! Cooperative cancellation: a flag the CLI (Ctrl-C) and the bindings (abort signals) set, and
//! that every streaming loop checks between buffers.

use crate::error::Error;
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared flag that asks a running build to stop. Cloning shares the flag.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A new, un-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every build holding this token to stop as soon as it can.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Two tokens are equal when they share one flag.
impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CancelToken {}

/// A reader that fails with [`Error::Cancelled`] (inside an I/O error) once `cancel` is set,
/// for loops that read through a stream they do not own, e.g. a tar reader.
pub(crate) struct CancellableReader<'c, R> {
    pub(crate) inner: R,
    pub(crate) cancel: &'c CancelToken,
}

impl<R: Read> Read for CancellableReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other(Error::Cancelled));
        }
        self.inner
            .read(buf)
            .map_err(|e| if self.cancel.is_cancelled() { io::Error::other(Error::Cancelled) } else { e })
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelToken").field(&self.is_cancelled()).finish()
    }
}
