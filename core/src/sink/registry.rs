//! The registry sink (`docker://REF`, or `--push REF`): the distribution-spec push.
//!
//! For each blob (layers, then the config): `HEAD` and skip what exists; mount from another
//! repository of the same registry when the blob came from there (falling back to an upload
//! when the registry answers 202); else upload it, streamed from its source (our layer file,
//! a base archive entry, or a base registry's blob read as it is sent). Blobs up to the chunk
//! size go in one `PUT`; larger ones in `PATCH` chunks with `Content-Range`, resumed from the
//! offset the registry reports after a failure, with bounded retries and backoff on 408, 429,
//! 5xx and dropped connections; a registry that refuses chunks gets one `PUT`. Only when every
//! blob exists does the manifest go up: by digest first, then each tag. A manifest that
//! already exists by digest means its blobs exist too; then only the tags are written.

use super::WriteContext;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::BlobSource;
use crate::reference::Reference;
use crate::registry::{push_scope, strip_query, Client, Reply, UploadStart};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;
use ureq::http::Method;

/// Blobs larger than this are sent in chunks of this size (`ZEROIMAGE_PUSH_CHUNK_SIZE`
/// overrides it, in bytes).
const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// Failed requests tolerated per blob before the push gives up.
const MAX_FAILURES: u32 = 5;

fn chunk_size() -> u64 {
    std::env::var("ZEROIMAGE_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CHUNK_SIZE)
}

/// Push `image` to `references`, which all name one repository of one registry; `pushed`
/// lists repositories of this build already pushed (blobs there can be mounted), and gets
/// this one added.
pub(crate) fn push(
    references: &[&Reference],
    image: &Image,
    ctx: &WriteContext<'_>,
    pushed: &mut Vec<(String, String)>,
) -> Result<()> {
    let target = references[0];
    for reference in references {
        if let Some(digest) = reference.digest() {
            if digest != image.manifest_digest {
                return Err(Error::InvalidOption {
                    option: "push",
                    value: reference.to_string(),
                    reason: format!("the image's digest is {}", image.manifest_digest),
                });
            }
        }
    }
    let registry = target.registry();
    let repository = target.repository();
    let client = Client::new(registry, ctx.registry)?;
    let media_type = image.format.manifest_media_type();
    let already = retrying(&client, "check the manifest", || {
        client.exists(repository, "manifests", &image.manifest_digest, media_type)
    })?;
    if already {
        client.log(&format!("{registry}/{repository}@{}: the manifest exists, its blobs too", image.manifest_digest));
    } else {
        let earlier: Vec<String> = pushed
            .iter()
            .filter(|(r, repo)| r == registry && repo != repository)
            .map(|(_, repo)| repo.clone())
            .collect();
        for layer in &image.layers {
            if ctx.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let mount = match &layer.source {
                BlobSource::Registry { client: source, repository: from, .. }
                    if source.registry() == registry && from != repository =>
                {
                    Some(from.clone())
                }
                _ => earlier.first().cloned(),
            };
            let blob = Blob { digest: &layer.digest, size: layer.size, open: &|| layer.open() };
            push_blob(&client, repository, &blob, mount.as_deref(), ctx)?;
        }
        let config = Arc::<[u8]>::from(image.config.as_slice());
        let open_config = || -> Result<Box<dyn Read + Send>> { Ok(Box::new(io::Cursor::new(config.clone()))) };
        let blob = Blob { digest: &image.config_digest, size: image.config.len() as u64, open: &open_config };
        push_blob(&client, repository, &blob, earlier.first().map(String::as_str), ctx)?;
        retrying(&client, "put the manifest", || {
            client.put_manifest(repository, &image.manifest_digest, media_type, &image.manifest)
        })?;
    }
    for reference in references {
        if let Some(tag) = reference.tag() {
            retrying(&client, "put the manifest", || {
                client.put_manifest(repository, tag, media_type, &image.manifest)
            })?;
        }
    }
    pushed.push((registry.to_string(), repository.to_string()));
    Ok(())
}

/// Push every image of `index` by digest, then the index by digest and under each tag of
/// `references` (one repository); with `platform_tags`, each image also under `TAG-<arch>`.
pub(crate) fn push_index(
    references: &[&Reference],
    index: &crate::ImageIndex,
    ctx: &WriteContext<'_>,
    pushed: &mut Vec<(String, String)>,
    platform_tags: bool,
) -> Result<()> {
    let target = references[0];
    for reference in references {
        if let Some(digest) = reference.digest() {
            if digest != index.manifest_digest {
                return Err(Error::InvalidOption {
                    option: "push",
                    value: reference.to_string(),
                    reason: format!("the index's digest is {}", index.manifest_digest),
                });
            }
        }
    }
    for image in &index.images {
        push(&[&target.with_digest(&image.manifest_digest)], image, ctx, pushed)?;
    }
    let client = Client::new(target.registry(), ctx.registry)?;
    let repository = target.repository();
    let media_type = index.format.index_media_type();
    let mut names = vec![index.manifest_digest.clone()];
    names.extend(references.iter().filter_map(|r| r.tag().map(str::to_string)));
    for name in &names {
        retrying(&client, "put the index", || client.put_manifest(repository, name, media_type, &index.manifest))?;
    }
    if platform_tags {
        for tag in references.iter().filter_map(|r| r.tag()) {
            for image in &index.images {
                let name = format!("{tag}-{}", super::index::platform_suffix(&image.platform));
                client.log(&format!("{}/{repository}:{name}: {}", target.registry(), image.platform));
                let media_type = image.format.manifest_media_type();
                retrying(&client, "put the manifest", || {
                    client.put_manifest(repository, &name, media_type, &image.manifest)
                })?;
            }
        }
    }
    Ok(())
}

/// A blob to push and how to read it from the start.
struct Blob<'a> {
    digest: &'a str,
    size: u64,
    open: &'a dyn Fn() -> Result<Box<dyn Read + Send>>,
}

impl Blob<'_> {
    /// The blob's bytes from `offset` on.
    fn open_at(&self, offset: u64) -> Result<Box<dyn Read + Send>> {
        let mut reader = (self.open)()?;
        if offset > 0 {
            let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
                .map_err(|e| Error::Network { url: format!("blob {}", self.digest), source: Box::new(e) })?;
            if skipped != offset {
                return Err(Error::DigestMismatch {
                    what: format!("blob {}", self.digest),
                    expected: format!("{} bytes", self.size),
                    actual: format!("{skipped} bytes"),
                });
            }
        }
        Ok(reader)
    }
}

/// Whether a failed request is worth another try.
fn transient(error: &Error) -> bool {
    match error {
        // A certificate the client does not trust stays untrusted: fail at once.
        Error::Network { source, .. } => !is_tls_error(source.as_ref()),
        Error::Registry { status, .. } => matches!(status, 408 | 429 | 500..=599),
        _ => false,
    }
}

fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(ureq_error) = e.downcast_ref::<ureq::Error>() {
            match ureq_error {
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) => return true,
                // rustls reports certificate and handshake failures as InvalidData I/O errors.
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => return true,
                _ => {}
            }
        }
        current = e.source();
    }
    false
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(250u64 << failures.min(5)).min(Duration::from_secs(5))
}

/// Run `f`, again after a backoff when it fails transiently, at most [`MAX_FAILURES`] times.
fn retrying<T>(client: &Client, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut failures = 0;
    loop {
        match f() {
            Err(e) if transient(&e) && failures + 1 < MAX_FAILURES => {
                failures += 1;
                client.log(&format!("{what}: {} (retrying, {failures} of {})", e.report(), MAX_FAILURES - 1));
                std::thread::sleep(backoff(failures));
            }
            other => return other,
        }
    }
}

/// Why one upload session ended without the blob.
enum Failed {
    /// Start over with a new session (after a backoff), if failures allow.
    Restart(Error),
    /// Give up.
    Fatal(Error),
}

fn push_blob(
    client: &Client,
    repository: &str,
    blob: &Blob<'_>,
    mount: Option<&str>,
    ctx: &WriteContext<'_>,
) -> Result<()> {
    let registry = client.registry();
    if retrying(client, "check a blob", || client.exists(repository, "blobs", blob.digest, ""))? {
        client.log(&format!("{registry}/{repository}: blob {} exists", blob.digest));
        return Ok(());
    }
    let mut mount = mount;
    let mut failures = 0u32;
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let start = retrying(client, "start an upload", || {
            client.start_upload(repository, mount.map(|from| (blob.digest, from)))
        })?;
        let location = match start {
            UploadStart::Mounted => {
                client.log(&format!(
                    "{registry}/{repository}: blob {} mounted from {}",
                    blob.digest,
                    mount.unwrap_or("")
                ));
                return Ok(());
            }
            UploadStart::Session(location) => location,
        };
        if let Some(from) = mount.take() {
            client.log(&format!("{registry}/{repository}: blob {} not mounted from {from}; uploading", blob.digest));
        }
        match upload(client, repository, blob, location, &mut failures, ctx) {
            Ok(()) => {
                client.log(&format!("{registry}/{repository}: blob {} uploaded ({} bytes)", blob.digest, blob.size));
                return Ok(());
            }
            Err(Failed::Restart(e)) if failures < MAX_FAILURES => {
                client.log(&format!("upload of {}: {} (starting over)", blob.digest, e.report()));
                std::thread::sleep(backoff(failures));
            }
            Err(Failed::Restart(e) | Failed::Fatal(e)) => return Err(e),
        }
    }
}

/// Upload `blob` through the session at `location`.
fn upload(
    client: &Client,
    repository: &str,
    blob: &Blob<'_>,
    mut location: String,
    failures: &mut u32,
    ctx: &WriteContext<'_>,
) -> std::result::Result<(), Failed> {
    let scope = push_scope(repository);
    let chunk = chunk_size();
    let mut offset = 0u64;
    let mut chunked = blob.size > chunk;
    ctx.report(0, blob.size);
    while chunked && offset < blob.size {
        if ctx.cancel.is_cancelled() {
            return Err(Failed::Fatal(Error::Cancelled));
        }
        let len = chunk.min(blob.size - offset);
        let mut reader = blob.open_at(offset).map_err(Failed::Fatal)?.take(len);
        let range = format!("{offset}-{}", offset + len - 1);
        let headers = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
        let outcome = client.send_stream(Method::PATCH, &location, &scope, &headers, &mut reader, len);
        let error = match outcome {
            Ok(reply) if reply.status == 202 => {
                let next = client.location(&reply, &location).map_err(Failed::Fatal)?;
                offset = range_end(&reply).unwrap_or(offset + len);
                location = next;
                ctx.report(offset, blob.size);
                continue;
            }
            Ok(reply) if offset == 0 && matches!(reply.status, 400 | 405 | 415 | 416 | 501) => {
                // This registry does not take chunks: one PUT in the same (untouched) session.
                client.log(&format!(
                    "{}: chunked upload refused ({}); sending the blob whole",
                    client.registry(),
                    reply.status
                ));
                chunked = false;
                break;
            }
            Ok(reply) if reply.status == 416 => {
                // The registry holds another offset than we thought: start over.
                return Err(Failed::Restart(client.status_error(&Method::PATCH, &location, &scope, reply)));
            }
            Ok(reply) => client.status_error(&Method::PATCH, &location, &scope, reply),
            Err(e) => e,
        };
        if !transient(&error) {
            return Err(Failed::Fatal(error));
        }
        *failures += 1;
        if *failures >= MAX_FAILURES {
            return Err(Failed::Fatal(error));
        }
        client.log(&format!("upload of {} at byte {offset}: {} (resuming)", blob.digest, error.report()));
        std::thread::sleep(backoff(*failures));
        // Ask the registry how much it has, and go on from there.
        match client.send_url(Method::GET, &location, &scope, &[], &Vec::new) {
            Ok(reply) if reply.status == 204 => {
                let next = client.location(&reply, &location).map_err(Failed::Fatal)?;
                offset = range_end(&reply).unwrap_or(0);
                location = next;
                client.log(&format!("upload of {}: the registry has {offset} bytes", blob.digest));
            }
            Ok(reply) => return Err(Failed::Restart(client.status_error(&Method::GET, &location, &scope, reply))),
            Err(e) => return Err(Failed::Restart(e)),
        }
    }
    // The final PUT: with the whole blob when not chunked, else empty.
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={}", blob.digest);
    let (mut reader, len): (Box<dyn Read + Send>, u64) =
        if chunked { (Box::new(io::empty()), 0) } else { (blob.open_at(0).map_err(Failed::Fatal)?, blob.size) };
    let headers = [("content-type", "application/octet-stream")];
    let mut counting = Counting { inner: &mut reader, done: 0, size: blob.size, ctx };
    match client.send_stream(Method::PUT, &url, &scope, &headers, &mut counting, len) {
        Ok(reply) if reply.status == 201 || reply.status == 204 => {
            ctx.report(blob.size, blob.size);
            Ok(())
        }
        Ok(reply) => {
            let error = client.status_error(&Method::PUT, &strip_query(&url), &scope, reply);
            *failures += 1;
            if transient(&error) {
                Err(Failed::Restart(error))
            } else {
                Err(Failed::Fatal(error))
            }
        }
        Err(e) => {
            *failures += 1;
            Err(Failed::Restart(e))
        }
    }
}

/// The offset after the registry's `Range: 0-N` (N + 1). Distribution answers `0-0` for an
/// empty upload too, so that means 0 (a registry holding one byte then answers 416 to the
/// next chunk, and the upload starts over).
fn range_end(reply: &Reply) -> Option<u64> {
    let value = crate::registry::header(&reply.headers, "range")?;
    let (start, end) = value.trim().trim_start_matches("bytes=").split_once('-')?;
    let end: u64 = end.trim().parse().ok()?;
    if start.trim() == "0" && end == 0 {
        return Some(0);
    }
    Some(end + 1)
}

/// A reader reporting progress as a whole blob streams through it.
struct Counting<'a, 'c> {
    inner: &'a mut dyn Read,
    done: u64,
    size: u64,
    ctx: &'a WriteContext<'c>,
}

impl Read for Counting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ctx.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.ctx.report(self.done, self.size);
        Ok(n)
    }
}
