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
use crate::sink::Sink;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// Whether `sink` is a registry push (which keeps the image's format).
pub(crate) fn is_push(sink: &Sink) -> bool {
    matches!(sink, Sink::Registry { .. })
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

/// The image archives, layouts and the Docker engine get: `image` with OCI media types, the
/// same layer and config bytes.
pub(crate) fn local_image(image: &Image) -> Result<Image> {
    if image.format == Format::Oci {
        return Ok(image.clone());
    }
    let layers = convert_layers(image.layers.clone(), Format::Oci)?;
    reassemble(image, Format::Oci, layers)
}

/// The image pushes get: `image`'s own format, with uncompressed base layers gzipped
/// (deterministically, streamed through temporary files in `scratch`).
pub(crate) fn push_image(image: &Image, compression: &Compression, scratch: &Path) -> Result<Image> {
    let base = &image.layers[..image.base_layers];
    if !base.iter().any(|l| is_uncompressed(&l.media_type)) {
        return Ok(image.clone());
    }
    let gzip = match compression.algorithm {
        Algorithm::Gzip => compression.clone(),
        _ => Compression::gzip(Algorithm::Gzip.default_level()).with_jobs(compression.jobs),
    };
    let mut layers = Vec::with_capacity(image.layers.len());
    for (i, layer) in image.layers.iter().enumerate() {
        layers.push(if i < image.base_layers && is_uncompressed(&layer.media_type) {
            gzip_layer(layer, &gzip, scratch)?.for_format(image.format)?
        } else {
            layer.clone()
        });
    }
    reassemble(image, image.format, layers)
}

/// `image` in `format` over `layers` (same diff_ids): the config bytes stay, the manifest is
/// written again with the same annotations.
fn reassemble(image: &Image, format: Format, layers: Vec<Layer>) -> Result<Image> {
    let config: Value = serde_json::from_slice(&image.config).map_err(|e| Error::InvalidOption {
        option: "config",
        value: String::new(),
        reason: e.to_string(),
    })?;
    let manifest: Value = serde_json::from_slice(&image.manifest).unwrap_or_default();
    let annotations: BTreeMap<String, String> = manifest["annotations"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let mut out = Image::assemble(format, image.platform.clone(), &config, layers, &annotations)?;
    out.base_layers = image.base_layers;
    Ok(out)
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
