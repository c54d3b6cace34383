//! Layers: lazy handles on compressed layer blobs, and the one-pass writer that turns files
//! into a deterministic, compressed layer (read → tar → sha256 → gzip → sha256 → file).

use crate::cancel::CancelToken;
use crate::digest::{HashReader, HashWriter};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use tempfile::TempPath;

/// OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = crate::media_type::OCI_LAYER_GZIP;
/// Docker media type of a gzip-compressed layer.
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = crate::media_type::DOCKER_LAYER_GZIP;

/// Size of the buffers bytes stream through.
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

pub use crate::compress::{Algorithm, Compression};

/// A layer of an image: its descriptor, its uncompressed digest, and where its bytes are.
///
/// Bytes move only when a sink copies the layer; the handle itself is cheap to clone.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Media type of the blob (compressed form), e.g. [`MEDIA_TYPE_OCI_LAYER_GZIP`].
    pub media_type: String,
    /// `sha256:` digest of the blob as stored.
    pub digest: String,
    /// Size of the blob as stored, in bytes.
    pub size: u64,
    /// `sha256:` digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    pub(crate) source: BlobSource,
}

/// Where a blob's bytes can be read from.
#[derive(Debug, Clone)]
pub(crate) enum BlobSource {
    /// A temporary file this build wrote; deleted when the last handle goes.
    Temp(Arc<TempPath>),
    /// A range of a file: a blob in an OCI layout, or an entry of a base archive.
    File { path: Arc<Path>, offset: u64 },
    /// A registry blob, streamed when opened; `location` (`docker://reg/repo@digest`) names it
    /// in messages. Once it has been downloaded and verified (to look inside the base), the
    /// `local_copy` is read instead; the registry origin still lets a push mount it.
    Registry {
        client: Arc<crate::registry::Client>,
        repository: String,
        location: Arc<Path>,
        local_copy: Option<Arc<TempPath>>,
    },
    /// Bytes generated in memory (a built-in base's small layer), named for messages.
    Memory { name: Arc<Path>, bytes: Arc<[u8]> },
}

impl Layer {
    /// Open the blob's bytes as stored (compressed), exactly `self.size` of them.
    pub(crate) fn open(&self) -> Result<Box<dyn Read + Send>> {
        match &self.source {
            BlobSource::Temp(path) | BlobSource::Registry { local_copy: Some(path), .. } => {
                let path: &Path = path;
                let file = File::open(path).map_err(|e| Error::io("open layer", path, e))?;
                Ok(Box::new(file.take(self.size)))
            }
            BlobSource::File { path, offset } => {
                use std::io::{Seek, SeekFrom};
                let mut file = File::open(path).map_err(|e| Error::io("open layer", path, e))?;
                file.seek(SeekFrom::Start(*offset)).map_err(|e| Error::io("read layer", path, e))?;
                Ok(Box::new(std::io::BufReader::with_capacity(BUFFER_SIZE, file).take(self.size)))
            }
            BlobSource::Memory { bytes, .. } => Ok(Box::new(io::Cursor::new(bytes.clone()).take(self.size))),
            BlobSource::Registry { client, repository, local_copy: None, .. } => {
                // One byte more than announced, so a longer blob fails verification.
                Ok(Box::new(client.get_blob(repository, &self.digest)?.take(self.size + 1)))
            }
        }
    }

    /// The file and offset holding the blob, when it is a local file (a kernel copy can move it).
    pub(crate) fn local_file(&self) -> Option<(&Path, u64)> {
        match &self.source {
            BlobSource::Temp(path) | BlobSource::Registry { local_copy: Some(path), .. } => Some((path, 0)),
            BlobSource::File { path, offset } => Some((path, *offset)),
            BlobSource::Registry { local_copy: None, .. } | BlobSource::Memory { .. } => None,
        }
    }

    /// Whether the blob is a local file whose bytes were checked against the digest as this
    /// build wrote it (its own layer, or a registry blob kept after a verified download), so
    /// copying it needs no second hash.
    pub(crate) fn is_verified_copy(&self) -> bool {
        matches!(self.source, BlobSource::Temp(_) | BlobSource::Registry { local_copy: Some(_), .. })
    }

    /// Whether opening the blob downloads it.
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self.source, BlobSource::Registry { local_copy: None, .. })
    }

    /// Read a registry blob from `copy` from now on: a file holding exactly its verified bytes.
    pub(crate) fn keep_local_copy(&mut self, copy: TempPath) {
        if let BlobSource::Registry { local_copy, .. } = &mut self.source {
            *local_copy = Some(Arc::new(copy));
        }
    }

    /// A path naming the blob's source, for messages.
    pub(crate) fn source_path(&self) -> &Path {
        match &self.source {
            BlobSource::Temp(path) => path,
            BlobSource::File { path, .. } => path,
            BlobSource::Registry { location, .. } => location,
            BlobSource::Memory { name, .. } => name,
        }
    }

    /// The same blob described with `format`'s media type, bytes unchanged (see
    /// [`crate::media_type::convert_layer`]); an error when no such media type exists.
    pub fn for_format(mut self, format: crate::media_type::Format) -> Result<Layer> {
        self.media_type = crate::media_type::convert_layer(&self.media_type, format)?.to_string();
        Ok(self)
    }

    /// The blob's bytes, verified against the descriptor as they stream: at the end, a wrong
    /// size or digest turns into a read error carrying [`Error::DigestMismatch`].
    pub(crate) fn verified_reader(&self) -> Result<VerifiedReader> {
        Ok(VerifiedReader(self.checked_reader()?))
    }

    /// The blob's bytes, hashed as they stream (on a helper thread). A wrong size is a read
    /// error at the end of the stream; the digest is compared by [`CheckedReader::check`], so
    /// the caller can go on writing while the last bytes are hashed.
    pub(crate) fn checked_reader(&self) -> Result<CheckedReader> {
        Ok(CheckedReader {
            inner: HashReader::new(self.open()?),
            digest: self.digest.clone(),
            size: self.size,
            what: format!("layer {} read from {}", self.digest, self.source_path().display()),
        })
    }
}

/// A reader over a blob that hashes it; see [`Layer::checked_reader`].
pub(crate) struct CheckedReader {
    inner: HashReader<Box<dyn Read + Send>>,
    digest: String,
    size: u64,
    what: String,
}

impl CheckedReader {
    fn mismatch(&self, digest: &str, size: u64) -> Error {
        Error::DigestMismatch {
            what: self.what.clone(),
            expected: format!("{} ({} bytes)", self.digest, self.size),
            actual: format!("{digest} ({size} bytes)"),
        }
    }

    /// Compare what was read with the descriptor (waits for the hashing to finish).
    pub(crate) fn check(&mut self) -> Result<()> {
        let (digest, size) = self.inner.finish();
        if size != self.size || digest != self.digest {
            return Err(self.mismatch(&digest, size));
        }
        Ok(())
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.count() != self.size {
            // Short: fail now, before a tar entry is padded out with the wrong length.
            let (digest, size) = self.inner.finish();
            return Err(io::Error::new(io::ErrorKind::InvalidData, self.mismatch(&digest, size)));
        }
        Ok(n)
    }
}

/// A reader over a blob that checks its digest and size when it reaches the end.
pub(crate) struct VerifiedReader(CheckedReader);

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.0.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(n)
    }
}

/// Why a copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
    Cancelled,
}

impl CopyError {
    /// Into an [`Error`], naming the file read from and the file written to.
    pub(crate) fn into_error(self, read_op: &'static str, from: &Path, write_op: &'static str, to: &Path) -> Error {
        match self {
            CopyError::Read(e) if e.get_ref().is_some_and(|inner| inner.is::<Error>()) => {
                *e.into_inner().and_then(|inner| inner.downcast::<Error>().ok()).expect("checked above")
            }
            CopyError::Read(e) => Error::io(read_op, from, e),
            CopyError::Write(e) => Error::io(write_op, to, e),
            CopyError::Cancelled => Error::Cancelled,
        }
    }
}

/// Copy `reader` to `writer` in large buffers, checking `cancel` between buffers and reporting
/// the running byte count to `on_progress`.
pub(crate) fn copy_cancellable(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    cancel: &CancelToken,
    mut on_progress: impl FnMut(u64),
) -> std::result::Result<u64, CopyError> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(CopyError::Cancelled);
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
        on_progress(total);
    }
}

/// The ownership and mode of a tar entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

/// Writes a deterministic tar stream: ustar headers, fixed owners and mtime, no user names.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, mtime: u64) -> Self {
        TarWriter { out, mtime }
    }

    /// The mtime of the entries written from now on.
    pub(crate) fn set_mtime(&mut self, mtime: u64) {
        self.mtime = mtime;
    }

    fn header(&self, path: &str, kind: tar::EntryType, owner: Owner, size: u64) -> io::Result<tar::Header> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{path}: {e}")))?;
        header.set_mode(owner.mode);
        header.set_uid(owner.uid);
        header.set_gid(owner.gid);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header.set_cksum();
        Ok(header)
    }

    /// A directory entry (`path` without leading `/`, with a trailing `/`).
    pub(crate) fn dir(&mut self, path: &str, owner: Owner) -> io::Result<()> {
        let header = self.header(path, tar::EntryType::Directory, owner, 0)?;
        self.out.write_all(header.as_bytes())
    }

    /// A symbolic link at `path` pointing to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str, owner: Owner) -> io::Result<()> {
        let mut header = self.header(path, tar::EntryType::Symlink, owner, 0)?;
        header
            .set_link_name(target)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{path} -> {target}: {e}")))?;
        header.set_cksum();
        self.out.write_all(header.as_bytes())
    }

    /// A regular file holding `data` (small content already in memory).
    pub(crate) fn bytes(&mut self, path: &str, owner: Owner, data: &[u8]) -> io::Result<()> {
        let header = self.header(path, tar::EntryType::Regular, owner, data.len() as u64)?;
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// A regular file whose content is `size` bytes read from `data`.
    ///
    /// A read error, or `data` holding more or fewer than `size` bytes, is reported against
    /// `source`: the file being archived.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn file(
        &mut self,
        path: &str,
        owner: Owner,
        size: u64,
        data: &mut dyn Read,
        source: &Path,
        cancel: &CancelToken,
        on_progress: impl FnMut(u64),
    ) -> Result<()> {
        let write_err = |e| Error::io("write layer for", source, e);
        let header = self.header(path, tar::EntryType::Regular, owner, size).map_err(write_err)?;
        self.out.write_all(header.as_bytes()).map_err(write_err)?;
        let copied = copy_cancellable(&mut data.take(size + 1), &mut self.out, cancel, on_progress)
            .map_err(|e| e.into_error("read", source, "write layer for", source))?;
        if copied != size {
            return Err(Error::ProgramChanged { path: source.to_path_buf(), expected: size, actual: copied });
        }
        self.pad(size).map_err(write_err)
    }

    /// A regular file of `size` bytes that `body` writes to the underlying writer itself
    /// (for copies the kernel can do); `body` must write exactly `size` bytes. Write errors
    /// name `dest`, the archive being written.
    pub(crate) fn file_with(
        &mut self,
        path: &str,
        owner: Owner,
        size: u64,
        dest: &Path,
        body: impl FnOnce(&mut W) -> Result<()>,
    ) -> Result<()> {
        let write_err = |e| Error::io("write", dest, e);
        let header = self.header(path, tar::EntryType::Regular, owner, size).map_err(write_err)?;
        self.out.write_all(header.as_bytes()).map_err(write_err)?;
        body(&mut self.out)?;
        self.pad(size).map_err(write_err)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    /// Write the end-of-archive marker and return the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        Ok(self.out)
    }
}

/// Write a new layer into a temporary file in `dir`, in one pass: the entries `fill` writes
/// are tarred, hashed (diff_id), compressed (in parallel, see [`crate::compress`]) and hashed
/// again (digest) as they stream.
pub(crate) fn write_layer(
    dir: &Path,
    media_type: &str,
    compression: &Compression,
    mtime: u64,
    fill: impl FnOnce(&mut TarWriter<&mut dyn Write>) -> Result<()>,
) -> Result<Layer> {
    let temp = tempfile::Builder::new()
        .prefix(".zeroimage-layer-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let (file, temp_path) = temp.into_parts();
    let write_err = |e| Error::io("write layer to", &*temp_path, e);
    let (mut file, diff_id, digest, size) =
        encode_layer(BufWriter::with_capacity(BUFFER_SIZE, file), compression, mtime, fill, write_err)?;
    file.flush().map_err(write_err)?;
    Ok(Layer {
        media_type: media_type.to_string(),
        digest,
        size,
        diff_id,
        source: BlobSource::Temp(Arc::new(temp_path)),
    })
}

/// Write a new layer into memory, as [`write_layer`] does into a file; for small generated
/// layers (a built-in base). `name` stands for the blob in messages.
pub(crate) fn memory_layer(
    name: &str,
    media_type: &str,
    compression: &Compression,
    mtime: u64,
    fill: impl FnOnce(&mut TarWriter<&mut dyn Write>) -> Result<()>,
) -> Result<Layer> {
    let write_err = |e| Error::io("generate layer", name, e);
    let (bytes, diff_id, digest, size) = encode_layer(Vec::new(), compression, mtime, fill, write_err)?;
    Ok(Layer {
        media_type: media_type.to_string(),
        digest,
        size,
        diff_id,
        source: BlobSource::Memory { name: Arc::from(Path::new(name)), bytes: Arc::from(bytes) },
    })
}

/// tar → sha256 (diff_id) → compression (see [`crate::compress`]) → sha256 (digest) → `out`; returns `out`, the diff_id, the
/// digest and the compressed size.
fn encode_layer<W: Write>(
    out: W,
    compression: &Compression,
    mtime: u64,
    fill: impl FnOnce(&mut TarWriter<&mut dyn Write>) -> Result<()>,
    write_err: impl Fn(io::Error) -> Error,
) -> Result<(W, String, String, u64)> {
    let blob = HashWriter::new(out);
    let encoder = compression.encoder(blob).map_err(&write_err)?;
    let mut diff = HashWriter::new(encoder);
    {
        let mut tar = TarWriter::new(&mut diff as &mut dyn Write, mtime);
        fill(&mut tar)?;
        tar.finish().map_err(&write_err)?;
    }
    let (encoder, diff_id, _) = diff.finish();
    let blob = encoder.finish().map_err(&write_err)?;
    let (out, digest, size) = blob.finish();
    Ok((out, diff_id, digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;

    fn owner() -> Owner {
        Owner { uid: 0, gid: 0, mode: 0o755 }
    }

    #[test]
    fn layer_is_deterministic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancelToken::new();
        let build = || {
            write_layer(dir.path(), MEDIA_TYPE_OCI_LAYER_GZIP, &Compression::default(), 7, |tar| {
                tar.dir("app/", owner()).unwrap();
                let data = b"#!hello".repeat(1000);
                tar.file("app/x", owner(), data.len() as u64, &mut &data[..], Path::new("x"), &cancel, |_| {})
            })
            .unwrap()
        };
        let (a, b) = (build(), build());
        assert_eq!((&a.digest, &a.diff_id, a.size), (&b.digest, &b.diff_id, b.size));

        let mut blob = Vec::new();
        a.open().unwrap().read_to_end(&mut blob).unwrap();
        assert_eq!(blob.len() as u64, a.size);
        assert_eq!(crate::digest::sha256_digest(&blob), a.digest);
        assert_eq!(&blob[3..9], &[0, 0, 0, 0, 0, 0], "no flags (so no name), no mtime");
        assert_eq!(blob[9], 255, "unknown OS byte");
        let mut tar_bytes = Vec::new();
        MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar_bytes).unwrap();
        assert_eq!(crate::digest::sha256_digest(&tar_bytes), a.diff_id);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.mtime().unwrap())
            })
            .collect();
        assert_eq!(entries, vec![("app/".into(), 0o755, 7), ("app/x".into(), 0o755, 7)]);
    }

    #[test]
    fn every_algorithm_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancelToken::new();
        let data = b"\x7fELF some program".repeat(50_000);
        for compression in [Compression::none(), Compression::zstd(3), Compression::gzip(1).with_jobs(2)] {
            let layer = write_layer(dir.path(), "t", &compression, 0, |tar| {
                tar.file("x", owner(), data.len() as u64, &mut &data[..], Path::new("x"), &cancel, |_| {})
            })
            .unwrap();
            let mut blob = Vec::new();
            layer.open().unwrap().read_to_end(&mut blob).unwrap();
            assert_eq!(crate::digest::sha256_digest(&blob), layer.digest);
            let tar_bytes = match compression.algorithm {
                Algorithm::None => blob.clone(),
                Algorithm::Zstd => zstd::decode_all(&blob[..]).unwrap(),
                _ => {
                    let mut out = Vec::new();
                    MultiGzDecoder::new(&blob[..]).read_to_end(&mut out).unwrap();
                    out
                }
            };
            assert_eq!(crate::digest::sha256_digest(&tar_bytes), layer.diff_id, "{compression:?}");
            assert_eq!(tar_bytes.len(), 512 + data.len().next_multiple_of(512) + 1024);
        }
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancelToken::new();
        let err = write_layer(dir.path(), MEDIA_TYPE_OCI_LAYER_GZIP, &Compression::default(), 0, |tar| {
            tar.file("x", owner(), 10, &mut &b"short"[..], Path::new("x"), &cancel, |_| {})
        })
        .unwrap_err();
        assert!(matches!(err, Error::ProgramChanged { expected: 10, actual: 5, .. }), "{err:?}");
    }

    #[test]
    fn cancelled_copy_stops() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = write_layer(dir.path(), MEDIA_TYPE_OCI_LAYER_GZIP, &Compression::default(), 0, |tar| {
            tar.file("x", owner(), 5, &mut &b"hello"[..], Path::new("x"), &cancel, |_| {})
        })
        .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temp file removed");
    }
}
