//! SHA-256 content digests, computed while bytes stream past.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Whether `digest` is a well-formed `sha256:<64 lowercase hex>` digest.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The hex part of a `sha256:<hex>` digest.
pub(crate) fn hex_part(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

/// A writer that hashes and counts everything written through it.
#[derive(Debug)]
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0 }
    }

    /// The inner writer, the `sha256:` digest and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{:x}", self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes handed to the hashing thread at a time.
const HASH_CHUNK: usize = 256 << 10;
/// Chunks in flight to the hashing thread (bounds the memory of a [`StreamHasher`]).
const HASH_CHUNKS_IN_FLIGHT: usize = 8;

/// SHA-256 of a stream, computed on a helper thread once the stream is longer than one chunk.
///
/// Hashing is the largest CPU cost of copying a blob (verifying a base layer while it is copied
/// into an archive): on its own thread it overlaps the reading and writing instead of adding
/// to them. Short streams are hashed inline, without a thread.
pub(crate) struct StreamHasher {
    chunk: Vec<u8>,
    state: HasherState,
    count: u64,
}

enum HasherState {
    Inline(Sha256),
    Thread {
        chunks: SyncSender<Vec<u8>>,
        free: Receiver<Vec<u8>>,
        buffers: usize,
        handle: JoinHandle<Sha256>,
    },
    Done(String),
    /// Only while switching states.
    Empty,
}

impl std::fmt::Debug for StreamHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHasher").field("count", &self.count).finish_non_exhaustive()
    }
}

impl Default for StreamHasher {
    fn default() -> Self {
        StreamHasher { chunk: Vec::new(), state: HasherState::Inline(Sha256::new()), count: 0 }
    }
}

impl StreamHasher {
    /// Hash `data` next.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        assert!(!matches!(self.state, HasherState::Done(_)), "update after finish");
        self.count += data.len() as u64;
        while !data.is_empty() {
            if self.chunk.capacity() < HASH_CHUNK {
                self.chunk.reserve_exact(HASH_CHUNK - self.chunk.len());
            }
            let n = (HASH_CHUNK - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.chunk.len() == HASH_CHUNK {
                self.hand_off();
            }
        }
    }

    /// Pass the full chunk to the hashing thread (started on the first full chunk).
    fn hand_off(&mut self) {
        if let HasherState::Inline(hasher) = &mut self.state {
            let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<u8>>(HASH_CHUNKS_IN_FLIGHT);
            let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
            let mut moved = hasher.clone();
            let spawned = std::thread::Builder::new().name("zeroimage-sha256".into()).spawn(move || {
                for mut chunk in chunk_rx {
                    moved.update(&chunk);
                    chunk.clear();
                    let _ = free_tx.send(chunk);
                }
                moved
            });
            match spawned {
                Ok(handle) => {
                    self.state = HasherState::Thread { chunks: chunk_tx, free: free_rx, buffers: 1, handle };
                }
                Err(_) => {
                    // No thread to be had: hash here, as for a short stream.
                    hasher.update(&self.chunk);
                    self.chunk.clear();
                    return;
                }
            }
        }
        let HasherState::Thread { chunks, free, buffers, .. } = &mut self.state else {
            unreachable!("hand_off runs before finish")
        };
        let next = match free.try_recv() {
            Ok(buffer) => buffer,
            Err(_) if *buffers < HASH_CHUNKS_IN_FLIGHT => {
                *buffers += 1;
                Vec::with_capacity(HASH_CHUNK)
            }
            Err(_) => free.recv().expect("the hashing thread runs until its channel closes"),
        };
        let full = std::mem::replace(&mut self.chunk, next);
        chunks.send(full).expect("the hashing thread runs until its channel closes");
    }

    /// The `sha256:` digest and byte count of everything hashed (idempotent).
    pub(crate) fn finish(&mut self) -> (String, u64) {
        let digest = match std::mem::replace(&mut self.state, HasherState::Empty) {
            HasherState::Inline(mut hasher) => {
                hasher.update(&self.chunk);
                format!("sha256:{:x}", hasher.finalize())
            }
            HasherState::Thread { chunks, handle, .. } => {
                let rest = std::mem::take(&mut self.chunk);
                chunks.send(rest).expect("the hashing thread runs until its channel closes");
                drop(chunks);
                let hasher = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                format!("sha256:{:x}", hasher.finalize())
            }
            HasherState::Done(digest) => digest,
            HasherState::Empty => unreachable!("a finished state is always restored"),
        };
        self.chunk = Vec::new();
        self.state = HasherState::Done(digest.clone());
        (digest, self.count)
    }
}

/// A reader that hashes and counts everything read through it (hashing on a helper thread
/// for long streams, see [`StreamHasher`]).
#[derive(Debug)]
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: StreamHasher,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: StreamHasher::default() }
    }

    /// The digest and byte count of everything read; call at the end of the stream.
    pub(crate) fn finish(&mut self) -> (String, u64) {
        self.hasher.finish()
    }

    /// Bytes read so far.
    pub(crate) fn count(&self) -> u64 {
        self.hasher.count
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Reading again at the end (after `finish`) is allowed, and hashes nothing.
        if n > 0 {
            self.hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn writer_and_reader_agree_with_one_shot() {
        let data = b"zeroimage".repeat(1000);
        let mut w = HashWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, digest, count) = w.finish();
        assert_eq!(out, data);
        assert_eq!(count, data.len() as u64);
        assert_eq!(digest, sha256_digest(&data));

        let mut r = HashReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish(), (sha256_digest(&data), data.len() as u64));
    }

    #[test]
    fn stream_hasher_agrees_with_one_shot_at_every_size_and_split() {
        // Sizes around the chunk edges and past the in-flight limit (the thread path), split
        // into uneven updates.
        let data: Vec<u8> =
            (0..HASH_CHUNK * (HASH_CHUNKS_IN_FLIGHT + 3) + 17).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, HASH_CHUNK - 1, HASH_CHUNK, HASH_CHUNK + 1, 3 * HASH_CHUNK, data.len()] {
            for split in [1000, 4096, HASH_CHUNK, 3 * HASH_CHUNK + 5] {
                let mut hasher = StreamHasher::default();
                for piece in data[..len].chunks(split) {
                    hasher.update(piece);
                }
                let expected = (sha256_digest(&data[..len]), len as u64);
                assert_eq!(hasher.finish(), expected, "len {len} split {split}");
                assert_eq!(hasher.finish(), expected, "finish is idempotent");
            }
        }
    }

    #[test]
    fn digest_syntax() {
        assert!(is_sha256_digest(&sha256_digest(b"x")));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest("md5:d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_sha256_digest(&sha256_digest(b"x").to_uppercase()));
    }
}
