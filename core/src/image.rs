//! Images: a manifest, a config and layers, serialised as stable, sorted JSON.

use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::platform::Platform;
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub use crate::media_type::Format;

/// OCI image manifest media type.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = crate::media_type::OCI_MANIFEST;
/// OCI image index media type.
pub const MEDIA_TYPE_OCI_INDEX: &str = crate::media_type::OCI_INDEX;
/// OCI image config media type.
pub const MEDIA_TYPE_OCI_CONFIG: &str = crate::media_type::OCI_CONFIG;
/// Docker v2 schema 2 manifest media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = crate::media_type::DOCKER_MANIFEST;
/// Docker manifest list media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str = crate::media_type::DOCKER_MANIFEST_LIST;
/// Docker image config media type.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = crate::media_type::DOCKER_CONFIG;

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
    /// How many of [`layers`](Self::layers) are the base's (the rest were appended).
    pub(crate) base_layers: usize,
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
        let base_layers = layers.len();
        Ok(Image { format, platform, config, config_digest, layers, manifest, manifest_digest, base_layers })
    }

    /// Bytes of the image as stored: manifest, config and every layer blob.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64 + self.config.len() as u64 + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// An image being composed: a base resolved for one platform, layers appended on top, and
/// config edits. Nothing is downloaded or copied until [`Image::write`]: base layers are lazy
/// handles (see [`Layer`]).
///
/// ```no_run
/// use zeroimage::{Base, Entry, ImageBuilder, Layer, LayerOptions, Platform, RegistryOptions, Sink, WriteOptions};
///
/// let platform: Platform = "linux/amd64".parse()?;
/// let mut image = ImageBuilder::from_base(&"builtin:static".parse::<Base>()?, &platform, &RegistryOptions::default())?;
/// let layer = Layer::from_entries(vec![Entry::bytes("/etc/app.conf", b"debug = false\n".to_vec())], &LayerOptions::default())?;
/// image.append(layer, "ADD app.conf /etc/app.conf");
/// image.set_entrypoint(["/app"]);
/// let image = image.build()?;
/// let sink: Sink = "app.tar".parse()?;
/// image.write(&[sink], &WriteOptions::default())?;
/// println!("{}", image.digest());
/// # Ok::<(), zeroimage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    platform: Platform,
    format: Format,
    config: Value,
    layers: Vec<Layer>,
    /// History entries (`created_by`) of the layers appended here, in order.
    appended: Vec<String>,
    annotations: BTreeMap<String, String>,
    created: u64,
}

impl ImageBuilder {
    /// Resolve `base` for `platform`: read its manifest and config (from the registry, archive
    /// or layout), but no layer bytes. The base's name and digest become the
    /// `org.opencontainers.image.base.*` annotations.
    pub fn from_base(
        base: &crate::Base,
        platform: &Platform,
        registry: &crate::RegistryOptions,
    ) -> Result<ImageBuilder> {
        let resolved = base.resolve(platform, registry)?;
        let mut annotations = BTreeMap::new();
        if let Some(name) = resolved.name {
            annotations.insert("org.opencontainers.image.base.name".to_string(), name);
        }
        if let Some(digest) = resolved.digest {
            annotations.insert("org.opencontainers.image.base.digest".to_string(), digest);
        }
        Ok(ImageBuilder {
            platform: platform.clone(),
            format: resolved.format,
            config: resolved.config,
            layers: resolved.layers,
            appended: Vec::new(),
            annotations,
            created: 0,
        })
    }

    /// The platform the image is for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The media-type family the image will be written in (the base's, unless
    /// [`set_format`](Self::set_format) changed it).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Write the image in `format`'s media types. Base layers keep their bytes; a base layer
    /// with no equivalent media type makes [`build`](Self::build) fail.
    pub fn set_format(&mut self, format: Format) -> &mut Self {
        self.format = format;
        self
    }

    /// The layers so far, base first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Whether the image's filesystem so far has a regular file (or a symlink to one) at the
    /// absolute `path`. Registry layers are downloaded once, into temporary files in
    /// `temp_dir`, and read from there afterwards; `cancel` stops the look-up.
    pub fn has_file(&mut self, path: &str, temp_dir: &std::path::Path, cancel: &crate::CancelToken) -> Result<bool> {
        crate::base::tree::has_file(&mut self.layers, path, temp_dir, cancel)
    }

    /// The merged file system of the layers so far (paths, not contents), read as
    /// [`has_file`](Self::has_file) reads it.
    pub(crate) fn tree(
        &mut self,
        temp_dir: &std::path::Path,
        cancel: &crate::CancelToken,
    ) -> Result<crate::base::tree::Tree> {
        crate::base::tree::Tree::read(&mut self.layers, temp_dir, cancel)
    }

    /// Check the image so far against `profile`'s rules (AWS Lambda's), listing every
    /// violation at once; registry layers read for it are kept in `temp_dir` for the outputs.
    pub fn check_profile(&mut self, profile: crate::lambda::Profile, temp_dir: &std::path::Path) -> Result<()> {
        let crate::lambda::Profile::Lambda = profile;
        let appended = !self.appended.is_empty();
        crate::lambda::check_lambda(&mut crate::lambda::Candidate {
            platform: &self.platform,
            config: &self.config,
            layers: &mut self.layers,
            own_layer: appended,
            max_uncompressed: crate::lambda::LAMBDA_MAX_UNCOMPRESSED,
            scratch: temp_dir,
        })
    }

    /// Add `layer` on top, recording `created_by` in the config's history.
    pub fn append(&mut self, layer: Layer, created_by: impl Into<String>) -> &mut Self {
        self.layers.push(layer);
        self.appended.push(created_by.into());
        self
    }

    /// Apply `edits` to the runtime config: all of them, or none when one is bad.
    pub fn configure(&mut self, edits: &crate::ConfigEdits) -> Result<&mut Self> {
        edits.check()?;
        crate::config::apply_edits(&mut self.config, edits)?;
        Ok(self)
    }

    /// Set the Entrypoint (and remove the base's Cmd, as a Dockerfile's ENTRYPOINT does).
    pub fn set_entrypoint<S: Into<String>>(&mut self, entrypoint: impl IntoIterator<Item = S>) -> &mut Self {
        let entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        crate::config::apply_edits(&mut self.config, &crate::ConfigEdits { entrypoint, ..Default::default() })
            .expect("an entrypoint edit is always valid");
        self
    }

    /// Set Cmd: the arguments after the entrypoint (empty: remove it).
    pub fn set_cmd<S: Into<String>>(&mut self, cmd: impl IntoIterator<Item = S>) -> &mut Self {
        let cmd = Some(cmd.into_iter().map(Into::into).collect());
        crate::config::apply_edits(&mut self.config, &crate::ConfigEdits { cmd, ..Default::default() })
            .expect("a cmd edit is always valid");
        self
    }

    /// Set an environment variable (merged over the base's by name).
    pub fn set_env(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        self.configure(&crate::ConfigEdits { env: vec![(key.into(), value.into())], ..Default::default() })
    }

    /// Set the user (`name`, `uid` or `uid:gid`).
    pub fn set_user(&mut self, user: &str) -> Result<&mut Self> {
        self.configure(&crate::ConfigEdits { user: Some(user.into()), ..Default::default() })
    }

    /// Set the working directory (absolute).
    pub fn set_workdir(&mut self, workdir: &str) -> Result<&mut Self> {
        self.configure(&crate::ConfigEdits { workdir: Some(workdir.into()), ..Default::default() })
    }

    /// Set a config label.
    pub fn set_label(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let labels = BTreeMap::from([(key.to_string(), value.to_string())]);
        self.configure(&crate::ConfigEdits { labels, ..Default::default() })
    }

    /// Set a manifest annotation (the caller's win over the base's name and digest).
    pub fn set_annotation(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        if key.is_empty() {
            return Err(Error::InvalidOption {
                option: "annotation",
                value: key.into(),
                reason: "the key is empty".into(),
            });
        }
        self.annotations.insert(key.to_string(), value.to_string());
        Ok(self)
    }

    /// Set the creation time (seconds since 1970) of the config and of the appended layers'
    /// history; default 0, the Unix epoch. Builds use `SOURCE_DATE_EPOCH`.
    pub fn set_created(&mut self, epoch: u64) -> Result<&mut Self> {
        crate::options::check_epoch(epoch)?;
        self.created = epoch;
        Ok(self)
    }

    /// Serialise the config and the manifest: the image, ready to [`write`](Image::write).
    pub fn build(&self) -> Result<Image> {
        let mut config = self.config.clone();
        let created = crate::config::rfc3339(self.created);
        crate::config::set_platform(&mut config, &self.platform, &created)?;
        let appended_from = self.layers.len() - self.appended.len();
        for (layer, created_by) in self.layers[appended_from..].iter().zip(&self.appended) {
            crate::config::append_layer(&mut config, &layer.diff_id, &created, created_by)?;
        }
        let layers = self.layers.iter().cloned().map(|l| l.for_format(self.format)).collect::<Result<Vec<_>>>()?;
        let mut image = Image::assemble(self.format, self.platform.clone(), &config, layers, &self.annotations)?;
        image.base_layers = appended_from;
        Ok(image)
    }
}

impl Image {
    /// The manifest digest (`sha256:…`): the image's identity.
    pub fn digest(&self) -> &str {
        &self.manifest_digest
    }

    /// Write the image to every sink, in order: archives and layouts appear atomically, and
    /// pushes to one repository go together (blobs once, then the manifest, then every tag).
    /// Returns what each sink received.
    pub fn write(&self, sinks: &[crate::Sink], options: &crate::WriteOptions) -> Result<Vec<crate::sink::Written>> {
        crate::sink::write_image(sinks, self, options)
    }
}

/// Several images, one per platform, under one index: an OCI image index, or a Docker manifest
/// list when the images are Docker-format. Written as a whole: every image's blobs and
/// manifest, then the index.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    /// Media type family (the images').
    pub format: Format,
    /// The images, in the order given.
    pub images: Vec<Image>,
    /// The index blob (canonical JSON).
    pub manifest: Vec<u8>,
    /// `sha256:` digest of [`manifest`](Self::manifest): the index's identity.
    pub manifest_digest: String,
}

impl ImageIndex {
    /// The index of `images`: one per platform, all in one media-type family.
    pub fn new(images: Vec<Image>) -> Result<ImageIndex> {
        let Some(first) = images.first() else {
            return Err(Error::InvalidOption {
                option: "program",
                value: String::new(),
                reason: "no image to index".into(),
            });
        };
        let format = first.format;
        for (i, image) in images.iter().enumerate() {
            if image.format != format {
                return Err(Error::InvalidOption {
                    option: "format",
                    value: image.platform.to_string(),
                    reason: format!(
                        "the {} image is {}-format, the {} image {format}; pass --format",
                        image.platform, image.format, first.platform
                    ),
                });
            }
            if let Some(other) = images[..i].iter().find(|o| o.platform == image.platform) {
                return Err(Error::InvalidOption {
                    option: "program",
                    value: image.platform.to_string(),
                    reason: format!("two images for {}", other.platform),
                });
            }
        }
        let manifests: Vec<Value> = images
            .iter()
            .map(|image| {
                let mut platform = serde_json::json!({
                    "architecture": image.platform.architecture(),
                    "os": image.platform.os(),
                });
                if let Some(variant) = image.platform.variant() {
                    platform["variant"] = serde_json::json!(variant);
                }
                serde_json::json!({
                    "mediaType": format.manifest_media_type(),
                    "digest": image.manifest_digest,
                    "size": image.manifest.len(),
                    "platform": platform,
                })
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": format.index_media_type(),
            "manifests": manifests,
        });
        let manifest = canonical_json(&index);
        let manifest_digest = sha256_digest(&manifest);
        Ok(ImageIndex { format, images, manifest, manifest_digest })
    }

    /// The index digest (`sha256:…`).
    pub fn digest(&self) -> &str {
        &self.manifest_digest
    }

    /// Bytes of everything as stored: the index, and every image's manifest, config and layers.
    pub fn size(&self) -> u64 {
        self.manifest.len() as u64 + self.images.iter().map(Image::size).sum::<u64>()
    }

    /// The image for `platform`, if there is one.
    pub fn image(&self, platform: &Platform) -> Option<&Image> {
        self.images.iter().find(|i| &i.platform == platform)
    }

    /// Write the index and every image to every sink: archives and layouts hold the index
    /// (and, for Docker 20.10's `docker load`, `manifest.json` names the
    /// [`WriteOptions::docker_platform`](crate::WriteOptions::docker_platform) image), a push sends every
    /// image, then the index, then the tags (and, with
    /// [`platform_tags`](crate::WriteOptions::platform_tags), `TAG-<arch>` per image), and a
    /// Docker engine gets its own platform's image.
    pub fn write(&self, sinks: &[crate::Sink], options: &crate::WriteOptions) -> Result<Vec<crate::sink::Written>> {
        crate::sink::write_index(sinks, self, options)
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
