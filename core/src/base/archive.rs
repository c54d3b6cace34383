//! Bases from an OCI archive (`oci-archive:PATH[:TAG]`, `--from-archive PATH`): the tar is
//! indexed once (entry offsets), and blobs are read in place at their offsets. Hostile entries
//! (absolute paths, `..`, links pointing outside the archive) reject the whole archive.

use super::layout::{self, Blobs};
use super::tar_reader::{Kind, Seekable, TarError, TarReader};
use super::ResolvedBase;
use crate::digest::hex_part;
use crate::error::{Error, Result};
use crate::layer::BlobSource;
use crate::platform::Platform;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// The regular files of a tar archive: normalised name → (data offset, size). Links inside
/// the archive are resolved to the file they name.
#[derive(Debug)]
pub(crate) struct TarIndex {
    pub path: Arc<Path>,
    /// The base as written (`oci-archive:x.tar`), for messages.
    pub label: String,
    entries: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    /// Read the archive's headers once (seeking over the data).
    pub(crate) fn open(path: &Path, label: String) -> Result<TarIndex> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::BaseNotFound { base: label.clone(), what: "archive file".into(), hint: None }
            }
            _ => Error::io("open", path, e),
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::InvalidTransport {
                what: "base",
                input: label,
                reason: "it is a directory; use oci:DIR for an image-layout directory".into(),
            });
        }
        let hostile = |entry: &str, reason: &str| Error::InvalidBase {
            base: label.clone(),
            reason: format!("archive entry {entry:?} {reason}; refusing a hostile archive"),
        };
        let corrupt = |e: std::io::Error| Error::InvalidBase {
            base: label.clone(),
            reason: format!("it is not a readable tar archive ({e})"),
        };
        let corrupt_tar = |e: TarError| match e {
            TarError::Io(e) => corrupt(e),
            TarError::Malformed(reason) => Error::InvalidBase {
                base: label.clone(),
                reason: format!("it is not a readable tar archive ({reason})"),
            },
        };
        let mut archive = TarReader::new(Seekable(file));
        let mut files = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        while let Some(entry) = archive.next_entry().map_err(corrupt_tar)? {
            let raw = String::from_utf8_lossy(&entry.path).into_owned();
            let name = normalise(&raw).map_err(|reason| hostile(&raw, reason))?;
            match entry.kind {
                Kind::Sparse => return Err(hostile(&raw, "is a sparse file")),
                Kind::File => {
                    files.insert(name, (entry.data_offset, entry.size));
                }
                Kind::Symlink | Kind::Hardlink => {
                    if entry.link.is_empty() {
                        return Err(hostile(&raw, "is a link without a target"));
                    }
                    let target = String::from_utf8_lossy(&entry.link).into_owned();
                    if target.starts_with('/') {
                        return Err(hostile(&raw, &format!("links to the absolute path {target:?}")));
                    }
                    let joined = if entry.kind == Kind::Symlink {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target.clone(),
                        }
                    } else {
                        target.clone()
                    };
                    let resolved = resolve_dots(&joined)
                        .ok_or_else(|| hostile(&raw, &format!("links to {target:?}, outside the archive")))?;
                    links.push((name, resolved));
                }
                Kind::Dir | Kind::Other => {}
            }
        }
        // Links to files (possibly through other links), a few hops deep.
        let link_targets: HashMap<&str, &str> = links.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        for (name, target) in &links {
            let mut target = target.as_str();
            for _ in 0..8 {
                if let Some(found) = files.get(target).copied() {
                    files.entry(name.clone()).or_insert(found);
                    break;
                }
                match link_targets.get(target) {
                    Some(next) => target = next,
                    None => break,
                }
            }
        }
        Ok(TarIndex { path: Arc::from(path), label, entries: files })
    }

    /// The offset and size of the file `name`.
    pub(crate) fn get(&self, name: &str) -> Option<(u64, u64)> {
        normalise(name).ok().and_then(|n| self.entries.get(&n).copied())
    }

    /// Read the file `name` whole, when it exists and is at most `limit` bytes.
    pub(crate) fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some((offset, size)) = self.get(name) else { return Ok(None) };
        if size > limit {
            return Err(Error::InvalidBase {
                base: self.label.clone(),
                reason: format!("{name} is {size} bytes, more than the {limit} expected"),
            });
        }
        let mut file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read", &self.path, e))?;
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size).read_to_end(&mut bytes).map_err(|e| Error::io("read", &self.path, e))?;
        if bytes.len() as u64 != size {
            return Err(Error::InvalidBase { base: self.label.clone(), reason: format!("{name} is truncated") });
        }
        Ok(Some(bytes))
    }
}

/// A tar entry name without `./`, empty parts and trailing `/`; absolute names and `..` parts
/// are errors.
fn normalise(name: &str) -> std::result::Result<String, &'static str> {
    if name.starts_with('/') {
        return Err("has an absolute path");
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a '..' path component"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// `a/b/../c` → `a/c`; `None` when `..` climbs above the root.
fn resolve_dots(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// An OCI layout inside a tar.
struct ArchiveBlobs(TarIndex);

impl Blobs for ArchiveBlobs {
    fn label(&self) -> String {
        self.0.label.clone()
    }

    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.0.read(name, limit)
    }

    fn blob_source(&self, digest: &str, size: u64) -> Result<BlobSource> {
        let name = format!("blobs/sha256/{}", hex_part(digest));
        match self.0.get(&name) {
            Some((offset, actual)) if actual == size => Ok(BlobSource::File { path: self.0.path.clone(), offset }),
            Some((_, actual)) => Err(Error::DigestMismatch {
                what: format!("blob {digest} in {}", self.0.label),
                expected: format!("{size} bytes"),
                actual: format!("{actual} bytes"),
            }),
            None => Err(Error::BaseNotFound { base: self.0.label.clone(), what: format!("blob {digest}"), hint: None }),
        }
    }
}

pub(super) fn resolve(path: &Path, tag: Option<&str>, label: String, platform: &Platform) -> Result<ResolvedBase> {
    let blobs = ArchiveBlobs(TarIndex::open(path, label)?);
    if blobs.0.get("index.json").is_none() && blobs.0.get("manifest.json").is_some() {
        return Err(Error::InvalidBase {
            base: blobs.0.label.clone(),
            reason: "it has no index.json; it looks like a docker save archive: use docker-archive:PATH".into(),
        });
    }
    layout::resolve_blobs(&blobs, tag, platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        assert_eq!(normalise("./blobs//sha256/x").unwrap(), "blobs/sha256/x");
        assert_eq!(normalise("index.json").unwrap(), "index.json");
        assert!(normalise("/etc/passwd").is_err());
        assert!(normalise("blobs/../../x").is_err());
        assert_eq!(resolve_dots("blobs/sha256/../sha256/y").unwrap(), "blobs/sha256/y");
        assert!(resolve_dots("a/../../b").is_none());
    }
}
