//! The image each kind of output gets.
//!
//! - Archives, `oci:` layouts and the Docker engine get OCI media types, whatever the base's
//!   format: OCI-only tools (umoci, oci-image-tool) refuse Docker manifests in an OCI layout,
//!   and skopeo, which defined `oci-archive:`, converts too. Layer and config bytes stay
//!   identical; only media types change (an uncompressed `docker save` layer becomes
//!   `application/vnd.oci.image.layer.v1.tar`).
//! - Pushes keep the base's format unless `--format` says otherwise, as crane and ko do. An
//!   uncompressed base layer is gzipped on the way (deterministically, streamed through a
//!   temporary file), as `docker push` and skopeo do: uncompressed layers are not in Docker's
//!   schema 2, and AWS Lambda refuses them.

use crate::base::manifest::convert_layers;
use crate::compress::{Algorithm, Compression, MEDIA_TYPE_DOCKER_LAYER_TAR, MEDIA_TYPE_OCI_LAYER_TAR};
use crate::digest::HashWriter;
use crate::error::{Error, Result};
use crate::image::{Format, Image};
use crate::layer::{BlobSource, Layer, BUFFER_SIZE};
use crate::platform::Platform;
use crate::sink::Sink;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// The images of one build: `local` for archives, layouts and the Docker engine, `push` for
/// registries; each only when some sink needs it.
#[derive(Debug)]
pub(crate) struct OutputImages {
    pub local: Option<Image>,
    pub push: Option<Image>,
}

impl OutputImages {
    /// The image `sink` gets.
    pub(crate) fn for_sink(&self, sink: &Sink) -> &Image {
        let image = if is_push(sink) { self.push.as_ref() } else { self.local.as_ref() };
        image.expect("an image for every sink kind in the build")
    }
}

pub(crate) fn is_push(sink: &Sink) -> bool {
    matches!(sink, Sink::Registry { .. })
}

/// Everything the images share.
pub(crate) struct Parts<'a> {
    pub platform: &'a Platform,
    pub config: &'a Value,
    /// The base's layers as the base stores them.
    pub base_layers: Vec<Layer>,
    /// The program's layer (none when a base is written on its own).
    pub own: Option<Layer>,
    pub annotations: &'a BTreeMap<String, String>,
    /// The media types of pushes.
    pub push_format: Format,
    /// How the program's layer was compressed (its gzip level and threads are reused).
    pub compression: &'a Compression,
    /// Where gzipped base layers are written.
    pub scratch: &'a Path,
}

/// `--format docker` changes pushes only: without one it would do nothing, which is an error.
pub(crate) fn check_format(format: Option<Format>, sinks: &[Sink]) -> Result<()> {
    if format == Some(Format::Docker) && !sinks.iter().any(is_push) {
        return Err(Error::InvalidOption {
            option: "format",
            value: "docker".into(),
            reason: "archives, oci: layouts and docker-daemon: outputs always hold OCI manifests (an archive's \
                     manifest.json is what docker load reads); --format chooses the media types of a push \
                     (--push or docker://REF), and there is none"
                .into(),
        });
    }
    Ok(())
}

/// The images `sinks` need.
pub(crate) fn output_images(sinks: &[Sink], parts: Parts<'_>) -> Result<OutputImages> {
    let local = if sinks.iter().any(|s| !is_push(s)) {
        let mut layers = convert_layers(parts.base_layers.clone(), Format::Oci)?;
        layers.extend(parts.own.clone().map(|own| own.for_format(Format::Oci)));
        Some(Image::assemble(Format::Oci, parts.platform.clone(), parts.config, layers, parts.annotations)?)
    } else {
        None
    };
    let push = if sinks.iter().any(is_push) {
        let gzip = match parts.compression.algorithm {
            Algorithm::Gzip => parts.compression.clone(),
            _ => Compression::gzip(Algorithm::Gzip.default_level()).with_jobs(parts.compression.jobs),
        };
        let mut base = Vec::with_capacity(parts.base_layers.len());
        for layer in parts.base_layers {
            base.push(if is_uncompressed(&layer.media_type) {
                gzip_layer(&layer, &gzip, parts.scratch)?
            } else {
                layer
            });
        }
        let mut layers = convert_layers(base, parts.push_format)?;
        layers.extend(parts.own.map(|own| own.for_format(parts.push_format)));
        Some(Image::assemble(parts.push_format, parts.platform.clone(), parts.config, layers, parts.annotations)?)
    } else {
        None
    };
    Ok(OutputImages { local, push })
}

/// Whether a layer media type is a plain tar.
pub(crate) fn is_uncompressed(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_LAYER_TAR || media_type == MEDIA_TYPE_DOCKER_LAYER_TAR
}

/// The same tar, gzipped into a temporary file in `dir`: read (verified against its digest),
/// compressed and hashed as it streams. Its diff_id stays; its media type becomes the gzip type
/// of its family.
pub(crate) fn gzip_layer(layer: &Layer, compression: &Compression, dir: &Path) -> Result<Layer> {
    let temp = tempfile::Builder::new()
        .prefix(".zeroimage-layer-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let (file, temp_path) = temp.into_parts();
    let write_err = |e| Error::io("write compressed layer to", &*temp_path, e);
    let mut reader = layer.verified_reader()?;
    let mut encoder =
        compression.encoder(HashWriter::new(BufWriter::with_capacity(BUFFER_SIZE, file))).map_err(write_err)?;
    std::io::copy(&mut reader, &mut encoder).map_err(|e| read_or_write_error(e, layer, &temp_path))?;
    let (mut out, digest, size) = encoder.finish().map_err(write_err)?.finish();
    out.flush().map_err(write_err)?;
    let family = if layer.media_type == MEDIA_TYPE_DOCKER_LAYER_TAR { Format::Docker } else { Format::Oci };
    Ok(Layer {
        media_type: family.gzip_layer_media_type().to_string(),
        digest,
        size,
        diff_id: layer.diff_id.clone(),
        source: BlobSource::Temp(Arc::new(temp_path)),
    })
}

/// An error of `io::copy` from a layer to a file: the layer's own error (digest mismatch,
/// download failure) when it carries one, else a write error.
fn read_or_write_error(e: std::io::Error, layer: &Layer, temp: &Path) -> Error {
    let is_ours = e.get_ref().is_some_and(|inner| inner.is::<Error>());
    if is_ours {
        let inner = e.into_inner().expect("checked above");
        return *inner.downcast::<Error>().expect("checked above");
    }
    if e.kind() == std::io::ErrorKind::InvalidData || e.kind() == std::io::ErrorKind::UnexpectedEof {
        return Error::io("read layer", layer.source_path(), e);
    }
    Error::io("write compressed layer to", temp, e)
}
