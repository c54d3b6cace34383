//! SHA-256 content digests, computed while bytes stream past.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

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

/// A reader that hashes and counts everything read through it.
#[derive(Debug)]
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0 }
    }

    /// The digest and byte count of what was read so far.
    pub(crate) fn snapshot(&self) -> (String, u64) {
        (format!("sha256:{:x}", self.hasher.clone().finalize()), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
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
        assert_eq!(r.snapshot(), (sha256_digest(&data), data.len() as u64));
    }

    #[test]
    fn digest_syntax() {
        assert!(is_sha256_digest(&sha256_digest(b"x")));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest("md5:d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_sha256_digest(&sha256_digest(b"x").to_uppercase()));
    }
}
