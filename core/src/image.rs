//! Images: a manifest, a config and layers, serialised as stable, sorted JSON.

use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::layer::{Layer, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_GZIP};
use crate::platform::Platform;
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// OCI image manifest media type.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The family of media types an image's manifest, config and layers use. Never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// OCI image-spec media types (the default).
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 media types.
    Docker,
}

impl Format {
    /// The manifest media type.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => MEDIA_TYPE_OCI_MANIFEST,
            Format::Docker => MEDIA_TYPE_DOCKER_MANIFEST,
        }
    }

    /// The config media type.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => MEDIA_TYPE_OCI_CONFIG,
            Format::Docker => MEDIA_TYPE_DOCKER_CONFIG,
        }
    }

    /// The media type of a gzip-compressed layer.
    pub fn gzip_layer_media_type(self) -> &'static str {
        match self {
            Format::Oci => MEDIA_TYPE_OCI_LAYER_GZIP,
            Format::Docker => MEDIA_TYPE_DOCKER_LAYER_GZIP,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Oci => "oci",
            Format::Docker => "docker",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "oci" => Ok(Format::Oci),
            "docker" | "v2s2" => Ok(Format::Docker),
            _ => Err(Error::InvalidOption {
                option: "format",
                value: s.to_string(),
                reason: "expected oci or docker".into(),
            }),
        }
    }
}

/// A complete image, ready for a sink: serialised manifest and config, and layer handles.
#[derive(Debug, Clone)]
pub struct Image {
    /// Media type family.
    pub format: Format,
    /// The platform the config declares.
    pub platform: Platform,
    /// The config blob (canonical JSON).
    pub config: Vec<u8>,
    /// `sha256:` digest of [`config`](Self::config).
    pub config_digest: String,
    /// Layers, base first.
    pub layers: Vec<Layer>,
    /// The manifest blob (canonical JSON).
    pub manifest: Vec<u8>,
    /// `sha256:` digest of [`manifest`](Self::manifest): the image's identity.
    pub manifest_digest: String,
}

impl Image {
    /// Serialise `config` and a manifest over it and `layers`.
    pub(crate) fn assemble(
        format: Format,
        platform: Platform,
        config: &Value,
        layers: Vec<Layer>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Image> {
        let config = canonical_json(config);
        let config_digest = sha256_digest(&config);
        let descriptor = |media_type: &str, size: u64, digest: &str| -> Result<Descriptor> {
            let digest: oci_spec::image::Digest = digest.parse().map_err(|e| Error::DigestMismatch {
                what: "a descriptor digest".into(),
                expected: "sha256:<64 hex digits>".into(),
                actual: format!("{digest} ({e})"),
            })?;
            Ok(Descriptor::new(MediaType::from(media_type), size, digest))
        };
        let mut builder = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(format.manifest_media_type()))
            .config(descriptor(format.config_media_type(), config.len() as u64, &config_digest)?)
            .layers(layers.iter().map(|l| descriptor(&l.media_type, l.size, &l.digest)).collect::<Result<Vec<_>>>()?);
        if !annotations.is_empty() {
            builder =
                builder.annotations(annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>());
        }
        let manifest = builder.build().map_err(|e| Error::InvalidOption {
            option: "manifest",
            value: String::new(),
            reason: e.to_string(),
        })?;
        let manifest = canonical_json(&serde_json::to_value(&manifest).expect("a manifest serialises"));
        let manifest_digest = sha256_digest(&manifest);
        Ok(Image { format, platform, config, config_digest, layers, manifest, manifest_digest })
    }

    /// Bytes of the image as stored: manifest, config and every layer blob.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64 + self.config.len() as u64 + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// Compact JSON with object keys sorted at every level: the same value always gives the same
/// bytes, whatever order the keys were inserted in.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string serialises");
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        leaf => serde_json::to_writer(&mut *out, leaf).expect("a JSON leaf serialises"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": "\u{e9}\""}], "c": null}});
        let out = String::from_utf8(canonical_json(&a)).unwrap();
        assert_eq!(out, r#"{"a":{"c":null,"z":[1,{"x":"é\"","y":2}]},"b":1}"#);
        let reparsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(reparsed, a);
    }
}
