//! Copying layer blobs into outputs: through the kernel when the blob is a local file, with
//! the digest checked on another thread, so the copy, the hash and the flush to disk overlap.

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::layer::{copy_cancellable, CheckedReader, Layer};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::thread::JoinHandle;

/// A layer's digest check that may still be running.
pub(crate) enum Check {
    /// The bytes went through this reader; its hash may still be finishing.
    Reader(CheckedReader),
    /// The kernel copied the bytes; a thread reads and hashes them from the source.
    Thread(JoinHandle<Result<()>>),
    /// The source was verified when this build wrote it: nothing to check again.
    Verified,
}

impl Check {
    /// Wait for the check: an error when the bytes do not match the layer's digest.
    pub(crate) fn wait(self) -> Result<()> {
        match self {
            Check::Reader(mut reader) => reader.check(),
            Check::Thread(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Check::Verified => Ok(()),
        }
    }
}

/// How many layer checks may be pending at once: each holds an open file and a hashing
/// thread until it is waited for, so a base with many layers must not keep one per layer.
const MAX_PENDING_CHECKS: usize = 4;

/// The checks of the layers copied so far, at most [`MAX_PENDING_CHECKS`] of them still
/// pending: adding one more first waits for the oldest.
#[derive(Default)]
pub(crate) struct Checks(VecDeque<Check>);

impl Checks {
    /// Add `check`, waiting for the oldest pending one when there are too many.
    pub(crate) fn push(&mut self, check: Check) -> Result<()> {
        if self.0.len() >= MAX_PENDING_CHECKS {
            self.0.pop_front().expect("not empty").wait()?;
        }
        self.0.push_back(check);
        Ok(())
    }

    /// Wait for every pending check: the first error, if any.
    pub(crate) fn wait(self) -> Result<()> {
        self.0.into_iter().try_for_each(Check::wait)
    }
}

/// Read and hash `layer` from its source on a thread of its own (which opens the source, so
/// a file is open only while it is read).
fn check_in_background(layer: &Layer, cancel: &CancelToken) -> Result<Check> {
    let layer = layer.clone();
    let cancel = cancel.clone();
    let what = layer.source_path().to_path_buf();
    let path = what.clone();
    let handle = std::thread::Builder::new()
        .name("zeroimage-verify".into())
        .spawn(move || {
            let mut reader = layer.checked_reader()?;
            copy_cancellable(&mut reader, &mut io::sink(), &cancel, |_| {})
                .map_err(|e| e.into_error("read layer", &what, "hash layer from", &what))?;
            reader.check()
        })
        .map_err(|e| Error::io("start a thread to verify", &path, e))?;
    Ok(Check::Thread(handle))
}

/// Bytes per `copy_file_range` round (between cancellation checks and progress reports).
const KERNEL_COPY_STEP: u64 = 16 << 20;

/// Copy `size` bytes at `offset` of `source` to `to`'s current position, in the kernel.
fn kernel_copy(
    source: &Path,
    offset: u64,
    size: u64,
    to: &File,
    dest: &Path,
    cancel: &CancelToken,
    mut on_progress: impl FnMut(u64),
) -> Result<()> {
    let mut from = File::open(source).map_err(|e| Error::io("open layer", source, e))?;
    from.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read layer", source, e))?;
    let mut copied = 0u64;
    while copied < size {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        // std's io::copy between files uses copy_file_range where the kernel has it.
        let step = (size - copied).min(KERNEL_COPY_STEP);
        let n = io::copy(&mut (&from).take(step), &mut &*to).map_err(|e| Error::io("write", dest, e))?;
        if n == 0 {
            return Err(Error::DigestMismatch {
                what: format!("layer read from {}", source.display()),
                expected: format!("{size} bytes"),
                actual: format!("{copied} bytes"),
            });
        }
        copied += n;
        on_progress(copied);
    }
    Ok(())
}

/// Copy `layer`'s blob into `to` (an output file being written, positioned where the blob goes):
/// a local blob through the kernel, another through memory. The returned check, waited for
/// before the output is committed, compares the bytes with the layer's digest (unless they
/// were verified as this build wrote them).
pub(crate) fn copy_layer(
    layer: &Layer,
    to: &File,
    dest: &Path,
    cancel: &CancelToken,
    on_progress: impl FnMut(u64),
) -> Result<Check> {
    if let Some((source, offset)) = layer.local_file() {
        let check = if layer.is_verified_copy() { Check::Verified } else { check_in_background(layer, cancel)? };
        kernel_copy(source, offset, layer.size, to, dest, cancel, on_progress)?;
        return Ok(check);
    }
    let mut reader = layer.checked_reader()?;
    let mut out = io::BufWriter::with_capacity(crate::layer::BUFFER_SIZE, to);
    copy_cancellable(&mut reader, &mut out, cancel, on_progress)
        .map_err(|e| e.into_error("read layer", layer.source_path(), "write", dest))?;
    out.flush().map_err(|e| Error::io("write", dest, e))?;
    Ok(Check::Reader(reader))
}
