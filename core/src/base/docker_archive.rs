//! Bases from what `docker save` writes (`docker-archive:PATH[:NAME]`): `manifest.json`, a
//! config JSON and layer tars, indexed once and read in place. The image stays Docker-format.

use super::archive::TarIndex;
use super::manifest;
use super::ResolvedBase;
use crate::digest::{hex_part, is_sha256_digest, HashReader};
use crate::error::{Error, Result};
use crate::image::Format;
use crate::layer::{BlobSource, Layer};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::MAX_JSON_SIZE;
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub(super) fn resolve(path: &Path, name: Option<&str>, label: String, platform: &Platform) -> Result<ResolvedBase> {
    let index = TarIndex::open(path, label.clone())?;
    let invalid = |reason: String| Error::InvalidBase { base: label.clone(), reason };
    let bytes = index
        .read("manifest.json", MAX_JSON_SIZE)?
        .ok_or_else(|| invalid("it has no manifest.json (not a docker save archive)".into()))?;
    let images: Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("its manifest.json is not valid JSON ({e})")))?;
    let images = images.as_array().ok_or_else(|| invalid("its manifest.json is not a list".into()))?;
    let tags = |image: &Value| -> Vec<String> {
        image["RepoTags"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let all_tags: Vec<String> = images.iter().flat_map(tags).collect();
    let wanted = name.map(|n| n.parse::<Reference>()).transpose()?;
    let chosen: Vec<(&Value, Option<String>)> = match &wanted {
        Some(wanted) => images
            .iter()
            .filter_map(|image| {
                tags(image)
                    .into_iter()
                    .find(|t| t.parse::<Reference>().is_ok_and(|r| r == *wanted))
                    .map(|t| (image, Some(t)))
            })
            .collect(),
        None => images.iter().map(|image| (image, tags(image).into_iter().next())).collect(),
    };
    let (image, tag) = match chosen.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::BaseNotFound {
                base: label,
                what: match name {
                    Some(n) => format!("image {n:?}"),
                    None => "an image".into(),
                },
                hint: (!all_tags.is_empty()).then(|| format!("it has {}", all_tags.join(", "))),
            })
        }
        several => {
            return Err(Error::InvalidOption {
                option: "base",
                value: label,
                reason: format!("it holds {} images; name one with :NAME ({})", several.len(), all_tags.join(", ")),
            })
        }
    };

    if let Some(layers) = image["Layers"].as_array().filter(|l| l.len() > manifest::MAX_BASE_LAYERS) {
        return Err(manifest::too_many_layers(&label, layers.len()));
    }
    let config_name =
        image["Config"].as_str().ok_or_else(|| invalid("an image in manifest.json has no Config".into()))?;
    let config_bytes = index
        .read(config_name, MAX_JSON_SIZE)?
        .ok_or_else(|| invalid(format!("its config {config_name} is missing")))?;
    // `<hex>.json` (docker save) or `blobs/sha256/<hex>` (Docker 25+) names the config's digest.
    let file_name = config_name.rsplit('/').next().unwrap_or(config_name);
    let named = format!("sha256:{}", file_name.trim_end_matches(".json"));
    if is_sha256_digest(&named) {
        manifest::verify(|| format!("config {config_name} in {label}"), &config_bytes, &named, None)?;
    }
    let config: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("its config is not valid JSON ({e})")))?;
    if !config.is_object() {
        return Err(invalid("its config is not a JSON object".into()));
    }
    if let (Some(os), Some(arch)) = (config["os"].as_str(), config["architecture"].as_str()) {
        let variant = config["variant"].as_str().filter(|v| !v.is_empty());
        if Platform::new(os, arch, variant).ok().as_ref() != Some(platform) {
            let offered = match variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            };
            return Err(Error::PlatformNotFound {
                base: label,
                platform: platform.to_string(),
                available: vec![offered],
            });
        }
    }
    let layer_names: Vec<&str> = image["Layers"]
        .as_array()
        .ok_or_else(|| invalid("an image in manifest.json has no Layers".into()))?
        .iter()
        .map(|l| l.as_str().ok_or_else(|| invalid("a layer name is not a string".into())))
        .collect::<Result<_>>()?;
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if diff_ids.len() != layer_names.len() {
        return Err(invalid(format!(
            "manifest.json lists {} layers but the config {} diff_ids",
            layer_names.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (layer_name, diff_id) in layer_names.into_iter().zip(diff_ids) {
        if !is_sha256_digest(diff_id) {
            return Err(invalid(format!("diff_id {diff_id:?} is not a sha256 digest")));
        }
        let (offset, size) =
            index.get(layer_name).ok_or_else(|| invalid(format!("its layer {layer_name} is missing")))?;
        let mut magic = [0u8; 4];
        let mut file = File::open(&index.path).map_err(|e| Error::io("open", &index.path, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read", &index.path, e))?;
        let got = (&mut file).take(4).read(&mut magic).map_err(|e| Error::io("read", &index.path, e))?;
        let (media_type, digest) = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
            (DOCKER_LAYER_GZIP, compressed_digest(&index, layer_name, offset, size)?)
        } else if got == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            (OCI_LAYER_ZSTD, compressed_digest(&index, layer_name, offset, size)?)
        } else {
            // Uncompressed: the blob is the diff; its bytes are checked against the diff_id
            // when a sink copies them.
            (DOCKER_LAYER_TAR, diff_id.to_string())
        };
        layers.push(Layer {
            media_type: media_type.to_string(),
            digest,
            size,
            diff_id: diff_id.to_string(),
            source: BlobSource::File { path: index.path.clone(), offset },
        });
    }
    Ok(ResolvedBase {
        config,
        layers,
        format: Format::Docker,
        name: tag.and_then(|t| t.parse::<Reference>().ok()).map(|r| r.to_string()),
        // A docker save archive has no manifest, so there is no manifest digest to record.
        digest: None,
    })
}

/// The digest of a compressed layer: from its name when it is `blobs/sha256/<hex>`, else
/// hashed (one pass over the entry).
fn compressed_digest(index: &TarIndex, name: &str, offset: u64, size: u64) -> Result<String> {
    let named = format!("sha256:{}", hex_part(name.rsplit('/').next().unwrap_or(name)));
    if name.contains("blobs/sha256/") && is_sha256_digest(&named) {
        return Ok(named);
    }
    let mut file = File::open(&index.path).map_err(|e| Error::io("open", &index.path, e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read", &index.path, e))?;
    let mut reader = HashReader::new(file.take(size));
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::io("read", &index.path, e))?;
    Ok(reader.finish().0)
}
