//! Writing an [`ImageIndex`] (several platforms under one name) to an archive (and, through
//! `layout::stage_index`, to an OCI layout): every image's layers (each blob once), configs
//! and manifests, then the index blob, and `index.json` pointing at the index, named as for a
//! single image. An archive's
//! `manifest.json`, which Docker 20.10's classic store reads, can name one image per tag: it
//! names the one the caller chose (by default linux/amd64, else the first), so the archive
//! never depends on the machine that built it.

use super::archive::{blob_path, docker_manifest_json, named_index_json, OCI_LAYOUT};
use super::copy::{copy_layer, Checks};
use super::{AtomicFile, WriteContext};
use crate::error::{Error, Result};
use crate::image::{canonical_json, Image, ImageIndex};
use crate::layer::{Layer, Owner, TarWriter, BUFFER_SIZE};
use crate::platform::Platform;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o755 };
const FILE: Owner = Owner { uid: 0, gid: 0, mode: 0o644 };

/// The image `manifest.json` names: `platform`'s, else linux/amd64's, else the first.
pub(crate) fn docker_image<'a>(index: &'a ImageIndex, platform: Option<&Platform>) -> Result<&'a Image> {
    match platform {
        Some(platform) => index.image(platform).ok_or_else(|| Error::InvalidOption {
            option: "docker-platform",
            value: platform.to_string(),
            reason: format!("the index has no image for it; it has {}", platforms(index)),
        }),
        None => {
            let amd64 = Platform::new("linux", "amd64", None)?;
            Ok(index.image(&amd64).unwrap_or(&index.images[0]))
        }
    }
}

/// `linux/amd64, linux/arm64`, for messages.
pub(crate) fn platforms(index: &ImageIndex) -> String {
    index.images.iter().map(|i| i.platform.to_string()).collect::<Vec<_>>().join(", ")
}

/// Every layer of the index once (platforms may share a base layer), in order.
pub(super) fn unique_layers(index: &ImageIndex) -> Vec<&Layer> {
    let mut seen = BTreeSet::new();
    index.images.iter().flat_map(|i| &i.layers).filter(|l| seen.insert(l.digest.as_str())).collect()
}

/// Small blobs: each image's config and manifest, then the index (each once).
pub(super) fn small_blobs(index: &ImageIndex) -> Vec<(&str, &[u8])> {
    let mut seen = BTreeSet::new();
    let mut blobs = Vec::new();
    for image in &index.images {
        blobs.push((image.config_digest.as_str(), image.config.as_slice()));
        blobs.push((image.manifest_digest.as_str(), image.manifest.as_slice()));
    }
    blobs.push((index.manifest_digest.as_str(), index.manifest.as_slice()));
    blobs.retain(|(digest, _)| seen.insert(*digest));
    blobs
}

/// The descriptor of the index, named for containerd (`io.containerd.image.name`) and OCI
/// tools (`org.opencontainers.image.ref.name`) when `tag` is given.
pub(super) fn index_descriptor(index: &ImageIndex, tag: Option<(&str, &str)>) -> Value {
    let mut descriptor = json!({
        "mediaType": index.format.index_media_type(),
        "digest": index.manifest_digest,
        "size": index.manifest.len(),
    });
    if let Some((full_name, ref_name)) = tag {
        descriptor["annotations"] = json!({
            "io.containerd.image.name": full_name,
            "org.opencontainers.image.ref.name": ref_name,
        });
    }
    descriptor
}

/// Write and check `index` as an archive under a temporary name beside `path`, flushed to
/// disk: [`AtomicFile::persist`] puts it in place; dropped, it disappears.
pub(super) fn stage_archive(
    path: &Path,
    index: &ImageIndex,
    docker: &Image,
    ctx: &WriteContext<'_>,
) -> Result<AtomicFile> {
    let mut out = AtomicFile::create(path)?;
    let dest = out.path().to_path_buf();
    let write_err = |e| Error::io("write", &dest, e);
    let checks = {
        let file: &File = out.file();
        let mut buffered = BufWriter::with_capacity(BUFFER_SIZE, file);
        let layers = unique_layers(index);
        let total: u64 = layers.iter().map(|l| l.size).sum();
        let mut done = 0u64;
        let mut checks = Checks::default();
        let mut tar = TarWriter::new(&mut buffered, ctx.mtime);
        tar.dir("blobs/", DIR).map_err(write_err)?;
        tar.dir("blobs/sha256/", DIR).map_err(write_err)?;
        for layer in layers {
            tar.file_with(&blob_path(&layer.digest), FILE, layer.size, &dest, |out| {
                out.flush().map_err(write_err)?;
                checks.push(copy_layer(layer, file, &dest, ctx.cancel, |n| ctx.report(done + n, total))?)?;
                Ok(())
            })?;
            done += layer.size;
        }
        let index_json = canonical_json(&named_index_json(ctx.tags, |tag| index_descriptor(index, tag)));
        let manifest_json = canonical_json(&docker_manifest_json(docker, ctx.tags));
        let mut files: Vec<(String, &[u8])> =
            small_blobs(index).into_iter().map(|(digest, bytes)| (blob_path(digest), bytes)).collect();
        files.push(("index.json".into(), &index_json));
        files.push(("manifest.json".into(), &manifest_json));
        files.push(("oci-layout".into(), OCI_LAYOUT));
        for (name, bytes) in files {
            tar.file(&name, FILE, bytes.len() as u64, &mut &bytes[..], &dest, ctx.cancel, |_| {})?;
        }
        tar.finish().map_err(write_err)?;
        buffered.flush().map_err(write_err)?;
        ctx.report(total, total);
        checks
    };
    out.sync_after(|| checks.wait())?;
    Ok(out)
}

/// The suffix of an image's per-platform tag: `amd64`, `arm64`, `armv7`, `ppc64le`.
pub(crate) fn platform_suffix(platform: &Platform) -> String {
    match (platform.architecture(), platform.variant()) {
        ("arm64", _) | (_, None) => platform.architecture().to_string(),
        (arch, Some(variant)) => format!("{arch}{variant}"),
    }
}
