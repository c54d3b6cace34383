//! What every base with manifests shares (registry, OCI archive, OCI layout): walking an index
//! to the manifest for a platform, and turning a manifest into config + layer handles.

use super::ResolvedBase;
use crate::digest::{is_sha256_digest, sha256_digest};
use crate::error::{Error, Result};
use crate::image::{
    Format, MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
use crate::layer::{BlobSource, Layer};
use crate::platform::Platform;
use serde_json::Value;

/// The most layers a base may have. Docker runs images of at most 125 layers and overlay
/// file systems stack a few hundred at most; a base beyond this is refused before any of its
/// blobs is read, so a hostile manifest cannot make a build open thousands of files.
pub(crate) const MAX_BASE_LAYERS: usize = 1000;

/// The error for a base with `count` layers, more than [`MAX_BASE_LAYERS`].
pub(crate) fn too_many_layers(base: &str, count: usize) -> Error {
    Error::Unsupported {
        what: format!("{base}: a base image with {count} layers"),
        hint: Some(format!(
            "zeroimage reads bases of at most {MAX_BASE_LAYERS} layers (Docker runs at most 125); \
             squash the base image's layers"
        )),
    }
}

/// Where a base's manifests and blobs are read from.
pub(crate) trait Store {
    /// The base as the user wrote it, for messages.
    fn name(&self) -> String;
    /// A manifest or index by digest, verified against it.
    fn manifest(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>>;
    /// A small blob (the config) by digest, verified against it.
    fn blob(&self, digest: &str, size: u64) -> Result<Vec<u8>>;
    /// Where a layer blob's bytes are; checks that it exists with this size.
    fn layer_source(&self, digest: &str, size: u64) -> Result<BlobSource>;
}

/// A manifest or index document: its bytes, digest and media type.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: Option<String>,
}

/// Walk from `root` (an index or a manifest) to the image manifest for `platform`, then read
/// its config and layers.
pub(crate) fn resolve(store: &dyn Store, root: Document, platform: &Platform) -> Result<ResolvedBase> {
    let mut doc = root;
    for _ in 0..4 {
        let value = parse_json(store, &doc.bytes, "manifest")?;
        let media_type = value["mediaType"].as_str().map(str::to_string).or_else(|| doc.media_type.clone());
        if value["schemaVersion"].as_u64() == Some(1) {
            return Err(Error::Unsupported {
                what: format!("{}: Docker schema 1 manifests", store.name()),
                hint: Some("convert the image to Docker v2 schema 2 or OCI (e.g. skopeo copy)".into()),
            });
        }
        let is_index = match media_type.as_deref() {
            Some(MEDIA_TYPE_OCI_INDEX | MEDIA_TYPE_DOCKER_MANIFEST_LIST) => true,
            Some(MEDIA_TYPE_OCI_MANIFEST | MEDIA_TYPE_DOCKER_MANIFEST) => false,
            None => value["manifests"].is_array(),
            Some(other) if value["manifests"].is_array() || value["layers"].is_array() => {
                return Err(not_an_image(store, &format!("its manifest has media type {other}")))
            }
            Some(other) => return Err(not_an_image(store, &format!("it is a {other} document"))),
        };
        if !is_index {
            return image(store, &doc, &value, media_type.as_deref(), platform);
        }
        let descriptor = select_platform(store, &value, platform)?;
        let digest = descriptor_digest(store, descriptor)?;
        let bytes = store.manifest(&digest, descriptor["size"].as_u64())?;
        doc = Document { bytes, digest, media_type: descriptor["mediaType"].as_str().map(str::to_string) };
    }
    Err(invalid(store, "indexes are nested more than 4 deep"))
}

/// The descriptor in `index` for `platform`: exact os/arch, variant after normalisation;
/// attestations and `unknown/unknown` entries skipped; never another architecture.
pub(crate) fn select_platform<'v>(store: &dyn Store, index: &'v Value, platform: &Platform) -> Result<&'v Value> {
    let manifests = index["manifests"].as_array().ok_or_else(|| invalid(store, "its index has no manifests"))?;
    let mut offered = Vec::new();
    let mut unlabelled = Vec::new();
    for descriptor in manifests {
        if descriptor["annotations"]["vnd.docker.reference.type"].as_str() == Some("attestation-manifest") {
            continue;
        }
        let p = &descriptor["platform"];
        let (Some(os), Some(arch)) = (p["os"].as_str(), p["architecture"].as_str()) else {
            unlabelled.push(descriptor);
            continue;
        };
        if os == "unknown" && arch == "unknown" {
            continue;
        }
        let variant = p["variant"].as_str();
        offered.push(match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
        if Platform::new(os, arch, variant).is_ok_and(|candidate| candidate == *platform) {
            return Ok(descriptor);
        }
    }
    // An index without platform fields and with one image (an OCI layout's index.json, say):
    // that image's config decides.
    if offered.is_empty() && unlabelled.len() == 1 {
        return Ok(unlabelled[0]);
    }
    if offered.is_empty() && unlabelled.len() > 1 {
        return Err(invalid(store, "its index lists several manifests without platforms"));
    }
    offered.dedup();
    Err(Error::PlatformNotFound { base: store.name(), platform: platform.to_string(), available: offered })
}

/// An image manifest → config and layer handles.
fn image(
    store: &dyn Store,
    doc: &Document,
    manifest: &Value,
    media_type: Option<&str>,
    platform: &Platform,
) -> Result<ResolvedBase> {
    let format = match media_type {
        Some(MEDIA_TYPE_DOCKER_MANIFEST) => Format::Docker,
        _ => Format::Oci,
    };
    if manifest["artifactType"].is_string() {
        return Err(not_an_image(store, &format!("it is an artifact of type {}", manifest["artifactType"])));
    }
    if let Some(layers) = manifest["layers"].as_array().filter(|l| l.len() > MAX_BASE_LAYERS) {
        return Err(too_many_layers(&store.name(), layers.len()));
    }
    let config_descriptor = &manifest["config"];
    let config_type = config_descriptor["mediaType"].as_str().unwrap_or_default();
    if config_type != MEDIA_TYPE_OCI_CONFIG && config_type != MEDIA_TYPE_DOCKER_CONFIG {
        return Err(not_an_image(store, &format!("its config has media type {config_type:?}")));
    }
    let config_digest = descriptor_digest(store, config_descriptor)?;
    let config_size = config_descriptor["size"].as_u64().ok_or_else(|| invalid(store, "the config has no size"))?;
    let config_bytes = store.blob(&config_digest, config_size)?;
    let config = parse_json(store, &config_bytes, "config")?;
    if !config.is_object() {
        return Err(invalid(store, "its config is not a JSON object"));
    }
    check_config_platform(store, &config, platform)?;

    let descriptors = manifest["layers"].as_array().ok_or_else(|| invalid(store, "its manifest has no layers list"))?;
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if diff_ids.len() != descriptors.len() {
        return Err(invalid(
            store,
            &format!("its manifest lists {} layers but its config {} diff_ids", descriptors.len(), diff_ids.len()),
        ));
    }
    let mut layers = Vec::with_capacity(descriptors.len());
    for (descriptor, diff_id) in descriptors.iter().zip(diff_ids) {
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
        if crate::media_type::layer_kind(media_type).is_none() {
            return Err(Error::Unsupported {
                what: format!("{}: layer media type {media_type:?}", store.name()),
                hint: None,
            });
        }
        let digest = descriptor_digest(store, descriptor)?;
        let size = descriptor["size"].as_u64().ok_or_else(|| invalid(store, "a layer has no size"))?;
        if !is_sha256_digest(diff_id) {
            return Err(invalid(store, &format!("diff_id {diff_id:?} is not a sha256 digest")));
        }
        let source = store.layer_source(&digest, size)?;
        layers.push(Layer { media_type: media_type.to_string(), digest, size, diff_id: diff_id.to_string(), source });
    }
    Ok(ResolvedBase { config, layers, format, name: None, digest: Some(doc.digest.clone()) })
}

/// A single-platform base whose config names another platform than the one asked is an error.
fn check_config_platform(store: &dyn Store, config: &Value, platform: &Platform) -> Result<()> {
    let (Some(os), Some(arch)) = (config["os"].as_str(), config["architecture"].as_str()) else {
        return Ok(());
    };
    let variant = config["variant"].as_str().filter(|v| !v.is_empty());
    let offered = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    match Platform::new(os, arch, variant) {
        Ok(p) if p == *platform => Ok(()),
        _ => Err(Error::PlatformNotFound {
            base: store.name(),
            platform: platform.to_string(),
            available: vec![offered],
        }),
    }
}

/// A descriptor's digest, checked to be a well-formed sha256 digest.
pub(crate) fn descriptor_digest(store: &dyn Store, descriptor: &Value) -> Result<String> {
    match descriptor["digest"].as_str() {
        Some(d) if is_sha256_digest(d) => Ok(d.to_string()),
        Some(d) if d.contains(':') && !d.starts_with("sha256:") => Err(Error::Unsupported {
            what: format!("{}: digest algorithm of {d:?}", store.name()),
            hint: Some("zeroimage reads sha256 digests only".into()),
        }),
        other => Err(invalid(store, &format!("a descriptor has a malformed digest {other:?}"))),
    }
}

/// Check `bytes` against `digest` (and `size` when known).
pub(crate) fn verify(what: impl FnOnce() -> String, bytes: &[u8], digest: &str, size: Option<u64>) -> Result<()> {
    let actual = sha256_digest(bytes);
    if actual != digest || size.is_some_and(|s| s != bytes.len() as u64) {
        return Err(Error::DigestMismatch {
            what: what(),
            expected: match size {
                Some(s) => format!("{digest} ({s} bytes)"),
                None => digest.to_string(),
            },
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}

fn parse_json(store: &dyn Store, bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| invalid(store, &format!("its {what} is not valid JSON ({e})")))
}

pub(crate) fn invalid(store: &dyn Store, reason: &str) -> Error {
    Error::InvalidBase { base: store.name(), reason: reason.to_string() }
}

fn not_an_image(store: &dyn Store, reason: &str) -> Error {
    Error::Unsupported {
        what: format!("{} as a base: {reason}", store.name()),
        hint: Some("a base must be a container image (an image manifest with an image config)".into()),
    }
}

/// Change base layers' media types to `format`'s when the bytes stay identical (gzip ↔ gzip,
/// tar ↔ tar); anything else is an error rather than a silent recompression.
pub(crate) fn convert_layers(layers: Vec<Layer>, format: Format) -> Result<Vec<Layer>> {
    layers.into_iter().map(|layer| layer.for_format(format)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake;
    impl Store for Fake {
        fn name(&self) -> String {
            "fake".into()
        }
        fn manifest(&self, _: &str, _: Option<u64>) -> Result<Vec<u8>> {
            unreachable!()
        }
        fn blob(&self, _: &str, _: u64) -> Result<Vec<u8>> {
            unreachable!()
        }
        fn layer_source(&self, _: &str, _: u64) -> Result<BlobSource> {
            unreachable!()
        }
    }

    fn entry(os: &str, arch: &str, variant: Option<&str>, digest: char) -> Value {
        let mut p = json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = json!(v);
        }
        json!({"mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": format!("sha256:{}", digest.to_string().repeat(64)), "size": 1, "platform": p})
    }

    #[test]
    fn selects_platforms() {
        let index = json!({"manifests": [
            entry("linux", "amd64", None, 'a'),
            entry("linux", "arm64", Some("v8"), 'b'),
            entry("linux", "arm", Some("v6"), 'c'),
            entry("linux", "arm", None, 'd'),
            entry("unknown", "unknown", None, 'e'),
        ]});
        let pick = |p: &str| {
            select_platform(&Fake, &index, &p.parse().unwrap()).map(|d| d["digest"].as_str().unwrap()[7..8].to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), "a");
        assert_eq!(pick("linux/arm64").unwrap(), "b", "arm64 ≡ arm64/v8");
        assert_eq!(pick("linux/arm/v6").unwrap(), "c");
        assert_eq!(pick("linux/arm").unwrap(), "d", "arm means arm/v7, which an entry without variant also means");
        let err = pick("linux/s390x").unwrap_err();
        match &err {
            Error::PlatformNotFound { available, .. } => {
                assert_eq!(available, &["linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm"])
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("linux/amd64, linux/arm64/v8"), "{err}");
        assert!(pick("linux/arm/v5").is_err(), "never another variant");
        let only_arm64 = json!({"manifests": [entry("linux", "arm64", None, 'b')]});
        assert!(select_platform(&Fake, &only_arm64, &"linux/amd64".parse().unwrap()).is_err(), "no fallback");
    }

    #[test]
    fn converts_only_when_bytes_stay_identical() {
        let layer = |media_type: &str| Layer {
            media_type: media_type.into(),
            digest: String::new(),
            size: 0,
            diff_id: String::new(),
            source: BlobSource::File { path: std::path::Path::new("x").into(), offset: 0 },
        };
        let out = convert_layers(vec![layer("application/vnd.oci.image.layer.v1.tar+gzip")], Format::Docker).unwrap();
        assert_eq!(out[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
        let out = convert_layers(vec![layer("application/vnd.docker.image.rootfs.diff.tar")], Format::Oci).unwrap();
        assert_eq!(out[0].media_type, "application/vnd.oci.image.layer.v1.tar");
        assert!(convert_layers(vec![layer("application/vnd.oci.image.layer.v1.tar+zstd")], Format::Docker).is_err());
    }
}
