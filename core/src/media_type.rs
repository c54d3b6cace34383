//! Media types: every manifest, config and layer media type zeroimage reads or writes, the
//! [`Format`] family they belong to, and the one checked conversion of a layer's media type
//! between families (the bytes stay identical, or it is refused).

use crate::error::{Error, Result};
use std::fmt;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI non-distributable gzip layer (deprecated, still found in Windows bases).
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer (what Docker 23+ writes; not in the schema 2 spec).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker uncompressed layer (what `docker save` writes).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The family of media types an image's manifest, config and layers use. Never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// OCI image-spec media types (the default).
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 media types.
    Docker,
}

/// How a layer's bytes are compressed, as its media type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerEncoding {
    /// A plain tar.
    Tar,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Every layer media type: its family and encoding.
const LAYERS: [(&str, Format, LayerEncoding); 7] = [
    (OCI_LAYER_GZIP, Format::Oci, LayerEncoding::Gzip),
    (OCI_LAYER_TAR, Format::Oci, LayerEncoding::Tar),
    (OCI_LAYER_ZSTD, Format::Oci, LayerEncoding::Zstd),
    (OCI_LAYER_NONDISTRIBUTABLE_GZIP, Format::Oci, LayerEncoding::Gzip),
    (DOCKER_LAYER_GZIP, Format::Docker, LayerEncoding::Gzip),
    (DOCKER_LAYER_TAR, Format::Docker, LayerEncoding::Tar),
    (DOCKER_LAYER_ZSTD, Format::Docker, LayerEncoding::Zstd),
];

impl Format {
    /// The manifest media type.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    /// The index (manifest list) media type.
    pub fn index_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    /// The config media type.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    /// The media type of a layer encoded as `encoding` in this family.
    pub fn layer_media_type(self, encoding: LayerEncoding) -> &'static str {
        match (self, encoding) {
            (Format::Oci, LayerEncoding::Tar) => OCI_LAYER_TAR,
            (Format::Oci, LayerEncoding::Gzip) => OCI_LAYER_GZIP,
            (Format::Oci, LayerEncoding::Zstd) => OCI_LAYER_ZSTD,
            (Format::Docker, LayerEncoding::Tar) => DOCKER_LAYER_TAR,
            (Format::Docker, LayerEncoding::Gzip) => DOCKER_LAYER_GZIP,
            (Format::Docker, LayerEncoding::Zstd) => DOCKER_LAYER_ZSTD,
        }
    }

    /// The media type of a gzip-compressed layer.
    pub fn gzip_layer_media_type(self) -> &'static str {
        self.layer_media_type(LayerEncoding::Gzip)
    }

    /// The family of a manifest, index or config media type.
    pub fn of_manifest(media_type: &str) -> Option<Format> {
        match media_type {
            OCI_MANIFEST | OCI_INDEX | OCI_CONFIG => Some(Format::Oci),
            DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | DOCKER_CONFIG => Some(Format::Docker),
            _ => None,
        }
    }
}

/// The family and encoding of a layer media type, if zeroimage knows it.
pub fn layer_kind(media_type: &str) -> Option<(Format, LayerEncoding)> {
    LAYERS.iter().find(|(t, _, _)| *t == media_type).map(|(_, f, e)| (*f, *e))
}

/// The media type of the same layer bytes in `format`'s family: the one checked conversion.
/// An unknown media type, or one with no equivalent that keeps the bytes, is an error.
pub fn convert_layer(media_type: &str, format: Format) -> Result<&'static str> {
    match layer_kind(media_type) {
        Some((family, _)) if family == format => {
            Ok(LAYERS.iter().find(|(t, _, _)| *t == media_type).map(|(t, _, _)| *t).expect("found above"))
        }
        // zstd has no Docker schema 2 media type, and a non-distributable layer has no
        // equivalent that keeps its meaning.
        Some((_, encoding))
            if media_type != OCI_LAYER_NONDISTRIBUTABLE_GZIP
                && !(format == Format::Docker && encoding == LayerEncoding::Zstd) =>
        {
            Ok(format.layer_media_type(encoding))
        }
        _ => Err(Error::Unsupported {
            what: format!("a layer of type {media_type} in a {format}-format image"),
            hint: Some("omit --format to keep the base's format; converting would change the layer's bytes".into()),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_layers_keeping_bytes() {
        assert_eq!(convert_layer(OCI_LAYER_GZIP, Format::Docker).unwrap(), DOCKER_LAYER_GZIP);
        assert_eq!(convert_layer(DOCKER_LAYER_TAR, Format::Oci).unwrap(), OCI_LAYER_TAR);
        assert_eq!(convert_layer(DOCKER_LAYER_ZSTD, Format::Oci).unwrap(), OCI_LAYER_ZSTD);
        assert!(convert_layer(OCI_LAYER_ZSTD, Format::Docker).is_err());
        assert_eq!(
            convert_layer(OCI_LAYER_NONDISTRIBUTABLE_GZIP, Format::Oci).unwrap(),
            OCI_LAYER_NONDISTRIBUTABLE_GZIP
        );
        assert!(convert_layer("application/x-unknown", Format::Oci).is_err());
        for (t, f, e) in LAYERS {
            assert_eq!(layer_kind(t), Some((f, e)));
        }
    }
}
