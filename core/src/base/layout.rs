//! Bases from an OCI image layout (`oci:DIR[:TAG]`), and the `index.json` walk that OCI
//! archives share: pick the image by its `org.opencontainers.image.ref.name`, then the platform.

use super::manifest::{self, Document, Store};
use super::ResolvedBase;
use crate::digest::hex_part;
use crate::error::{Error, Result};
use crate::layer::BlobSource;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::MAX_JSON_SIZE;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of an OCI layout, wherever they are (a directory, a tar).
pub(super) trait Blobs {
    /// The base as written, for messages.
    fn label(&self) -> String;
    /// A small file (`index.json`, a JSON blob) whole; `None` when it does not exist.
    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>>;
    /// Where the blob `digest` of `size` bytes is; an error when missing or of another size.
    fn blob_source(&self, digest: &str, size: u64) -> Result<BlobSource>;
}

struct LayoutStore<'a, B: Blobs + ?Sized>(&'a B);

impl<B: Blobs + ?Sized> LayoutStore<'_, B> {
    fn json_blob(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>> {
        let bytes = self
            .0
            .read_file(&format!("blobs/sha256/{}", hex_part(digest)), MAX_JSON_SIZE)?
            .ok_or_else(|| Error::BaseNotFound { base: self.0.label(), what: format!("blob {digest}"), hint: None })?;
        manifest::verify(|| format!("blob {digest} in {}", self.0.label()), &bytes, digest, size)?;
        Ok(bytes)
    }
}

impl<B: Blobs + ?Sized> Store for LayoutStore<'_, B> {
    fn name(&self) -> String {
        self.0.label()
    }

    fn manifest(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>> {
        self.json_blob(digest, size)
    }

    fn blob(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        self.json_blob(digest, Some(size))
    }

    fn layer_source(&self, digest: &str, size: u64) -> Result<BlobSource> {
        self.0.blob_source(digest, size)
    }
}

/// `index.json` → the image named `tag` (or the only one) → the platform's manifest → base.
pub(super) fn resolve_blobs<B: Blobs + ?Sized>(
    blobs: &B,
    tag: Option<&str>,
    platform: &Platform,
) -> Result<ResolvedBase> {
    let store = LayoutStore(blobs);
    let index_bytes = blobs.read_file("index.json", MAX_JSON_SIZE)?.ok_or_else(|| Error::InvalidBase {
        base: blobs.label(),
        reason: "it has no index.json (not an OCI image layout)".into(),
    })?;
    let index: Value = serde_json::from_slice(&index_bytes)
        .map_err(|e| manifest::invalid(&store, &format!("its index.json is not valid JSON ({e})")))?;
    let all =
        index["manifests"].as_array().ok_or_else(|| manifest::invalid(&store, "its index.json has no manifests"))?;
    let names: Vec<String> = all.iter().filter_map(ref_name).collect();
    let candidates: Vec<&Value> = match tag {
        Some(tag) => all.iter().filter(|d| names_match(d, tag)).collect(),
        None => all.iter().collect(),
    };
    let descriptor = match candidates.as_slice() {
        [] => {
            return Err(Error::BaseNotFound {
                base: blobs.label(),
                what: match tag {
                    Some(tag) => format!("image {tag:?}"),
                    None => "an image".into(),
                },
                hint: Some(if names.is_empty() {
                    "its index.json names no images".to_string()
                } else {
                    format!("it has {}", names.join(", "))
                }),
            })
        }
        [one] => *one,
        several if several.iter().all(|d| d["platform"].is_object()) => {
            let list = serde_json::json!({"manifests": several});
            let chosen = manifest::select_platform(&store, &list, platform)?;
            let digest = chosen["digest"].clone();
            several.iter().copied().find(|d| d["digest"] == digest).expect("chosen from this list")
        }
        several => {
            return Err(Error::InvalidOption {
                option: "base",
                value: blobs.label(),
                reason: format!(
                    "it holds {} images; name one with :NAME ({})",
                    several.len(),
                    if names.is_empty() { "none is named".to_string() } else { names.join(", ") }
                ),
            })
        }
    };
    let digest = manifest::descriptor_digest(&store, descriptor)?;
    let bytes = store.manifest(&digest, descriptor["size"].as_u64())?;
    let root = Document { bytes, digest, media_type: descriptor["mediaType"].as_str().map(str::to_string) };
    let mut resolved = manifest::resolve(&store, root, platform)?;
    resolved.name = full_name(descriptor);
    Ok(resolved)
}

fn ref_name(descriptor: &Value) -> Option<String> {
    descriptor["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_string)
}

/// Whether `tag` names this descriptor: its `ref.name`, or its containerd image name, whole or
/// by tag.
fn names_match(descriptor: &Value, tag: &str) -> bool {
    let annotations = &descriptor["annotations"];
    ["org.opencontainers.image.ref.name", "io.containerd.image.name"]
        .iter()
        .any(|key| annotations[*key].as_str().is_some_and(|name| name == tag || name.ends_with(&format!(":{tag}"))))
}

/// The fully qualified name an archive gives its image, when it gives one.
fn full_name(descriptor: &Value) -> Option<String> {
    let annotations = &descriptor["annotations"];
    if let Some(name) = annotations["io.containerd.image.name"].as_str() {
        return name.parse::<Reference>().ok().map(|r| r.to_string());
    }
    annotations["org.opencontainers.image.ref.name"]
        .as_str()
        .filter(|n| n.contains('/') || n.contains(':'))
        .and_then(|n| n.parse::<Reference>().ok())
        .map(|r| r.to_string())
}

/// An OCI layout directory.
struct LayoutDir {
    dir: PathBuf,
    label: String,
}

impl Blobs for LayoutDir {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if !meta.is_file() || meta.len() > limit {
            return Err(Error::InvalidBase {
                base: self.label.clone(),
                reason: format!("{name} is not a file of at most {limit} bytes"),
            });
        }
        fs::read(&path).map(Some).map_err(|e| Error::io("read", &path, e))
    }

    fn blob_source(&self, digest: &str, size: u64) -> Result<BlobSource> {
        let path = self.dir.join("blobs").join("sha256").join(hex_part(digest));
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == size => {
                Ok(BlobSource::File { path: Arc::from(path.as_path()), offset: 0 })
            }
            Ok(meta) => Err(Error::DigestMismatch {
                what: format!("blob {digest} in {}", self.label),
                expected: format!("a file of {size} bytes"),
                actual: format!("{} bytes", meta.len()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::BaseNotFound { base: self.label.clone(), what: format!("blob {digest}"), hint: None })
            }
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }
}

pub(super) fn resolve(dir: &Path, tag: Option<&str>, label: String, platform: &Platform) -> Result<ResolvedBase> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            Error::InvalidTransport {
                what: "base",
                input: label,
                reason: "it is not a directory; use oci-archive:PATH for an archive".into(),
            }
        } else {
            Error::BaseNotFound { base: label, what: "image-layout directory".into(), hint: None }
        });
    }
    resolve_blobs(&LayoutDir { dir: dir.to_path_buf(), label }, tag, platform)
}
