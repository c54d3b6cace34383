//! The archive sink: one tar that is both an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and a `docker load` archive (`manifest.json`), as `docker save` writes
//! since Docker 25. Written under a temporary name and renamed into place.

use super::copy::{copy_layer, Check, Checks};
use super::{AtomicFile, WriteContext};
use crate::digest::hex_part;
use crate::error::{Error, Result};
use crate::image::{canonical_json, Image, MEDIA_TYPE_OCI_INDEX};
use crate::layer::{Owner, TarWriter, BUFFER_SIZE};
use crate::reference::Reference;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o755 };
const FILE: Owner = Owner { uid: 0, gid: 0, mode: 0o644 };

/// `{"imageLayoutVersion":"1.0.0"}`
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Write and check the archive under a temporary name beside `path`, flushed to disk:
/// [`AtomicFile::persist`] puts it in place; dropped, it disappears.
pub(super) fn stage(path: &Path, image: &Image, ctx: &WriteContext<'_>) -> Result<AtomicFile> {
    let mut out = AtomicFile::create(path)?;
    let temp_path = out.path().to_path_buf();
    let checks = {
        let file: &File = out.file();
        let mut buffered = BufWriter::with_capacity(BUFFER_SIZE, file);
        let checks = write_entries(&mut buffered, &temp_path, Some(file), image, ctx)?;
        buffered.flush().map_err(|e| Error::io("write", &temp_path, e))?;
        checks
    };
    // The file goes to disk while the last layer bytes are hashed; a mismatch discards it.
    out.sync_after(|| checks.wait())?;
    Ok(out)
}

/// Stream the archive to `out`; `dest` names it in error messages. Every layer is checked
/// against its digest before this returns.
pub(super) fn write_to(out: &mut dyn Write, dest: &Path, image: &Image, ctx: &WriteContext<'_>) -> Result<()> {
    write_entries(out, dest, None, image, ctx)?.wait()
}

/// Write the archive's entries, returning the layers' digest checks still to be waited for
/// (sizes are checked as each layer ends). With `file`, `out` buffers writes to that file and
/// layer blobs are copied straight into it (local ones by the kernel: see [`copy_layer`]).
fn write_entries<W: Write>(
    out: W,
    dest: &Path,
    file: Option<&File>,
    image: &Image,
    ctx: &WriteContext<'_>,
) -> Result<Checks> {
    let write_err = |e| Error::io("write", dest, e);
    let total = image.size();
    let mut done = 0u64;
    let mut checks = Checks::default();
    let mut tar = TarWriter::new(out, ctx.mtime);
    tar.dir("blobs/", DIR).map_err(write_err)?;
    tar.dir("blobs/sha256/", DIR).map_err(write_err)?;
    for layer in &image.layers {
        let name = blob_path(&layer.digest);
        match file {
            Some(file) => tar.file_with(&name, FILE, layer.size, dest, |out| {
                out.flush().map_err(write_err)?;
                checks.push(copy_layer(layer, file, dest, ctx.cancel, |n| ctx.report(done + n, total))?)?;
                Ok(())
            })?,
            None => {
                let mut reader = layer.checked_reader()?;
                tar.file(&name, FILE, layer.size, &mut reader, layer.source_path(), ctx.cancel, |n| {
                    ctx.report(done + n, total)
                })?;
                checks.push(Check::Reader(reader))?;
            }
        }
        done += layer.size;
    }
    for (digest, bytes) in [(&image.config_digest, &image.config), (&image.manifest_digest, &image.manifest)] {
        tar.file(&blob_path(digest), FILE, bytes.len() as u64, &mut &bytes[..], dest, ctx.cancel, |_| {})?;
    }
    let index = canonical_json(&index_json(image, ctx.tags));
    tar.file("index.json", FILE, index.len() as u64, &mut &index[..], dest, ctx.cancel, |_| {})?;
    let manifest = canonical_json(&docker_manifest_json(image, ctx.tags));
    tar.file("manifest.json", FILE, manifest.len() as u64, &mut &manifest[..], dest, ctx.cancel, |_| {})?;
    tar.file("oci-layout", FILE, OCI_LAYOUT.len() as u64, &mut &OCI_LAYOUT[..], dest, ctx.cancel, |_| {})?;
    tar.finish().map_err(write_err)?;
    ctx.report(total, total);
    Ok(checks)
}

/// `blobs/sha256/<hex>`
pub(crate) fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_part(digest))
}

/// The descriptor of `image`'s manifest, with the name annotations for `tag` when given.
pub(crate) fn manifest_descriptor(image: &Image, tag: Option<(&str, &str)>) -> Value {
    let mut descriptor = json!({
        "mediaType": image.format.manifest_media_type(),
        "digest": image.manifest_digest,
        "size": image.manifest.len(),
    });
    if let Some((full_name, ref_name)) = tag {
        descriptor["annotations"] = json!({
            "io.containerd.image.name": full_name,
            "org.opencontainers.image.ref.name": ref_name,
        });
    }
    descriptor
}

/// `index.json`: one manifest descriptor per tag, named for containerd and OCI tools.
fn index_json(image: &Image, tags: &[Reference]) -> Value {
    named_index_json(tags, |tag| manifest_descriptor(image, tag))
}

/// `index.json` of `descriptor` (a manifest's or an index's), once per tag, each named.
pub(super) fn named_index_json(tags: &[Reference], descriptor: impl Fn(Option<(&str, &str)>) -> Value) -> Value {
    let manifests: Vec<Value> = if tags.is_empty() {
        vec![descriptor(None)]
    } else {
        tags.iter().map(|t| descriptor(Some((&t.to_string(), t.tag().unwrap_or("latest"))))).collect()
    };
    json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": manifests})
}

/// Docker's `manifest.json`, which Docker 20.10's `docker load` reads.
pub(super) fn docker_manifest_json(image: &Image, tags: &[Reference]) -> Value {
    let repo_tags: Vec<String> = tags.iter().map(Reference::familiar).collect();
    json!([{
        "Config": blob_path(&image.config_digest),
        "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
        "Layers": image.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }])
}
