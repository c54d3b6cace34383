//! The OCI image-layout directory sink (`oci:DIR[:TAG]`): blobs are added by content, and
//! `index.json` is rewritten atomically with our manifest replacing any of the same name.

use super::archive::{blob_path, manifest_descriptor, OCI_LAYOUT};
use super::copy::copy_layer;
use super::{write_atomic, AtomicFile, WriteContext};
use crate::error::{Error, Result};
use crate::image::{canonical_json, Image, MEDIA_TYPE_OCI_INDEX};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

pub(super) fn write(dir: &Path, tag: Option<&str>, image: &Image, ctx: &WriteContext<'_>) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::io("create directory", &blobs, e))?;

    // Read the existing index first: a corrupt one is an error before anything is written.
    let index_path = dir.join("index.json");
    let mut index = read_index(dir, &index_path)?;

    let total = image.size();
    let mut done = 0u64;
    for layer in &image.layers {
        let dest = dir.join(blob_path(&layer.digest));
        if !blob_present(&dest, layer.size) {
            let mut out = AtomicFile::create(&dest)?;
            let temp_path = out.path().to_path_buf();
            let check = copy_layer(layer, out.file(), &temp_path, ctx.cancel, |n| ctx.report(done + n, total))?;
            out.commit_after(|| check.wait())?;
        }
        done += layer.size;
    }
    for (digest, bytes) in [(&image.config_digest, &image.config), (&image.manifest_digest, &image.manifest)] {
        let dest = dir.join(blob_path(digest));
        if !blob_present(&dest, bytes.len() as u64) {
            write_atomic(&dest, bytes)?;
        }
    }
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        write_atomic(&layout, OCI_LAYOUT)?;
    }

    let ref_name = tag.map(str::to_string).or_else(|| ctx.tags.first().and_then(|t| t.tag().map(str::to_string)));
    let ref_name = ref_name.unwrap_or_else(|| "latest".to_string());
    let full_name = ctx.tags.first().map(|t| t.to_string());
    let mut descriptor = manifest_descriptor(image, None);
    let mut annotations = json!({"org.opencontainers.image.ref.name": ref_name});
    if let Some(full_name) = full_name {
        annotations["io.containerd.image.name"] = json!(full_name);
    }
    descriptor["annotations"] = annotations;
    let manifests = index["manifests"].as_array_mut().expect("checked above");
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() != Some(ref_name.as_str()));
    manifests.push(descriptor);
    write_atomic(&index_path, &canonical_json(&index))?;
    ctx.report(total, total);
    Ok(())
}

/// The layout's `index.json`, or an empty index when there is none yet; one that is not an
/// OCI image index is an error.
pub(super) fn read_index(dir: &Path, index_path: &Path) -> Result<Value> {
    match fs::read(index_path) {
        Ok(bytes) => {
            serde_json::from_slice::<Value>(&bytes).ok().filter(|v| v["manifests"].is_array()).ok_or_else(|| {
                Error::InvalidTransport {
                    what: "output",
                    input: format!("oci:{}", dir.display()),
                    reason: "its index.json is not an OCI image index; choose an empty or new directory".into(),
                }
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": []}))
        }
        Err(e) => Err(Error::io("read", index_path, e)),
    }
}

pub(super) fn blob_present(path: &Path, size: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}
