//! Base images: what a build starts `FROM`.

mod archive;
mod builtin;
mod docker_archive;
mod layout;
pub(crate) mod manifest;
mod registry;
mod tar_reader;
pub(crate) mod tree;
mod write;

pub use builtin::{Builtin, BuiltinItem};
pub use write::{write_base, BaseOptions};

use crate::config::scratch_config;
use crate::error::{Error, Result};
use crate::image::Format;
use crate::layer::Layer;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::RegistryOptions;
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a build's base image comes from, parsed from the transport strings skopeo uses.
///
/// | string | base |
/// |---|---|
/// | `scratch` | an empty image |
/// | `docker://REF`, or a bare `REF` | an image in a registry (`alpine:3.20`, `ghcr.io/x/y@sha256:…`) |
/// | `oci-archive:PATH[:NAME]` | an OCI archive (a tar of an OCI image layout) |
/// | `oci:DIR[:NAME]` | an OCI image-layout directory |
/// | `docker-archive:PATH[:NAME]` | what `docker save` writes |
/// | `builtin:static` | zeroimage's embedded distroless-style base ([`Builtin`]) |
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Base {
    /// An empty image: the program's layer is the only one.
    #[default]
    Scratch,
    /// An image in a registry.
    Registry(Reference),
    /// An OCI archive; `tag` picks an image by its `org.opencontainers.image.ref.name`.
    OciArchive {
        /// The archive file.
        path: PathBuf,
        /// The image's name in the archive, when it holds several.
        tag: Option<String>,
    },
    /// An OCI image-layout directory; `tag` as for [`Base::OciArchive`].
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The image's name in the layout, when it holds several.
        tag: Option<String>,
    },
    /// A `docker save` archive; `name` picks an image by one of its `RepoTags`.
    DockerArchive {
        /// The archive file.
        path: PathBuf,
        /// The image's name (`busybox:latest`), when the archive holds several.
        name: Option<String>,
    },
    /// A base embedded in zeroimage (`builtin:static`).
    Builtin(Builtin),
}

impl FromStr for Base {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = |reason: &str| Error::InvalidTransport { what: "base", input: s.into(), reason: reason.into() };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(name) = s.strip_prefix("builtin:") {
            return Ok(Base::Builtin(name.parse()?));
        }
        if s == "scratch" {
            return Ok(Base::Scratch);
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return Ok(Base::Registry(rest.parse()?));
        }
        let path_and_name = |rest: &str, what: &str| -> Result<(PathBuf, Option<String>)> {
            let (path, name) = match rest.split_once(':') {
                Some((path, name)) => (path, Some(name)),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(bad(&format!("the {what} path is empty")));
            }
            if let Some(name) = name {
                if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad("the name after the path is empty or has whitespace"));
                }
            }
            Ok((PathBuf::from(path), name.map(str::to_string)))
        };
        if let Some((transport, rest)) = s.split_once(':') {
            match transport {
                "oci-archive" => {
                    let (path, tag) = path_and_name(rest, "archive")?;
                    return Ok(Base::OciArchive { path, tag });
                }
                "oci" => {
                    let (dir, tag) = path_and_name(rest, "layout directory")?;
                    return Ok(Base::OciLayout { dir, tag });
                }
                "docker-archive" => {
                    let (path, name) = path_and_name(rest, "archive")?;
                    if let Some(name) = &name {
                        name.parse::<Reference>()?;
                    }
                    return Ok(Base::DockerArchive { path, name });
                }
                "docker-daemon" | "containers-storage" | "dir" | "docker" | "ostree" | "sif" | "tarball" => {
                    return Err(Error::Unsupported {
                        what: format!("base transport {transport:?}"),
                        hint: Some(transport_hint()),
                    })
                }
                _ => {}
            }
        }
        s.parse::<Reference>().map(Base::Registry).map_err(|e| match e {
            Error::InvalidReference { input, reason } if looks_like_path(&input) => {
                Error::InvalidTransport { what: "base", input, reason: format!("{reason}; {}", transport_hint()) }
            }
            other => other,
        })
    }
}

fn transport_hint() -> String {
    "bases are scratch, builtin:static, docker://REF (or a bare REF), oci-archive:PATH[:NAME], \
     oci:DIR[:NAME] and docker-archive:PATH[:NAME]"
        .into()
}

fn looks_like_path(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.ends_with(".tar") || s.contains('\\')
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_name = |f: &mut fmt::Formatter<'_>, prefix: &str, path: &PathBuf, name: &Option<String>| match name {
            Some(name) => write!(f, "{prefix}:{}:{name}", path.display()),
            None => write!(f, "{prefix}:{}", path.display()),
        };
        match self {
            Base::Scratch => f.write_str("scratch"),
            Base::Registry(reference) => write!(f, "docker://{reference}"),
            Base::OciArchive { path, tag } => with_name(f, "oci-archive", path, tag),
            Base::OciLayout { dir, tag } => with_name(f, "oci", dir, tag),
            Base::DockerArchive { path, name } => with_name(f, "docker-archive", path, name),
            Base::Builtin(builtin) => builtin.fmt(f),
        }
    }
}

/// A base image resolved for one platform: its config (as JSON), its layers, its format, and
/// the name and manifest digest recorded in the `org.opencontainers.image.base.*` annotations.
#[derive(Debug)]
pub(crate) struct ResolvedBase {
    pub config: Value,
    pub layers: Vec<Layer>,
    pub format: Format,
    /// The base's fully qualified name, when it has one.
    pub name: Option<String>,
    /// The digest of the base's (platform-specific) manifest, when it has one.
    pub digest: Option<String>,
}

impl Base {
    /// The local file or directory this base is read from, if any: an input that no output
    /// of the build may overwrite.
    pub(crate) fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            Base::OciArchive { path, .. } | Base::DockerArchive { path, .. } => Some(path),
            Base::OciLayout { dir, .. } => Some(dir),
            Base::Scratch | Base::Registry(_) | Base::Builtin(_) => None,
        }
    }
}

impl Base {
    /// Resolve the base for `platform`.
    pub(crate) fn resolve(&self, platform: &Platform, registry: &RegistryOptions) -> Result<ResolvedBase> {
        match self {
            Base::Scratch => Ok(ResolvedBase {
                config: scratch_config(platform),
                layers: Vec::new(),
                format: Format::Oci,
                name: None,
                digest: None,
            }),
            Base::Registry(reference) => registry::resolve(reference, platform, registry),
            Base::OciArchive { path, tag } => archive::resolve(path, tag.as_deref(), self.to_string(), platform),
            Base::OciLayout { dir, tag } => layout::resolve(dir, tag.as_deref(), self.to_string(), platform),
            Base::DockerArchive { path, name } => {
                docker_archive::resolve(path, name.as_deref(), self.to_string(), platform)
            }
            Base::Builtin(builtin) => {
                let layer = builtin.layer()?;
                let config = builtin.config(platform, &layer.diff_id);
                Ok(ResolvedBase { config, layers: vec![layer], format: Format::Oci, name: None, digest: None })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scratch_and_builtin() {
        assert_eq!("scratch".parse::<Base>().unwrap(), Base::Scratch);
        assert_eq!(Base::Scratch.to_string(), "scratch");
        assert!("".parse::<Base>().is_err());
        assert_eq!("builtin:static".parse::<Base>().unwrap(), Base::Builtin(Builtin::Static));
        assert_eq!(Base::Builtin(Builtin::Static).to_string(), "builtin:static");
        let err = "builtin:nope".parse::<Base>().unwrap_err();
        assert!(err.to_string().contains("builtin:static"), "{err}");
    }

    #[test]
    fn builtin_has_its_files_and_no_loader() {
        let platform: Platform = "linux/amd64".parse().unwrap();
        let registry = RegistryOptions::default();
        let mut resolved = Base::Builtin(Builtin::Static).resolve(&platform, &registry).unwrap().layers;
        let scratch = std::env::temp_dir();
        let cancel = crate::cancel::CancelToken::new();
        assert!(tree::has_file(&mut resolved, "/etc/passwd", &scratch, &cancel).unwrap());
        assert!(
            tree::has_file(&mut resolved, "/usr/share/zoneinfo/UTC", &scratch, &cancel).unwrap(),
            "a symlink to a file"
        );
        assert!(!tree::has_file(&mut resolved, "/tmp", &scratch, &cancel).unwrap(), "a directory");
        assert!(!tree::has_file(&mut resolved, "/lib64/ld-linux-x86-64.so.2", &scratch, &cancel).unwrap());
        assert!(!tree::has_file(&mut resolved, "/lib/ld-musl-x86_64.so.1", &scratch, &cancel).unwrap());
        let mut empty = Base::Scratch.resolve(&platform, &registry).unwrap().layers;
        assert!(!tree::has_file(&mut empty, "/etc/passwd", &scratch, &cancel).unwrap());
    }

    #[test]
    fn parses_bases() {
        let r = |s: &str| Base::Registry(s.parse().unwrap());
        let cases = [
            ("scratch", Base::Scratch),
            ("alpine", r("docker.io/library/alpine:latest")),
            ("docker://gcr.io/distroless/static:nonroot", r("gcr.io/distroless/static:nonroot")),
            ("127.0.0.1:5000/team/base:1.2", r("127.0.0.1:5000/team/base:1.2")),
            ("oci-archive:alpine.tar", Base::OciArchive { path: "alpine.tar".into(), tag: None }),
            ("oci-archive:a.tar:v1", Base::OciArchive { path: "a.tar".into(), tag: Some("v1".into()) }),
            ("oci:./layout:latest", Base::OciLayout { dir: "./layout".into(), tag: Some("latest".into()) }),
            ("oci:dir", Base::OciLayout { dir: "dir".into(), tag: None }),
            ("docker-archive:saved.tar", Base::DockerArchive { path: "saved.tar".into(), name: None }),
            (
                "docker-archive:saved.tar:busybox:1.36",
                Base::DockerArchive { path: "saved.tar".into(), name: Some("busybox:1.36".into()) },
            ),
        ];
        for (input, want) in cases {
            let got = input.parse::<Base>().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(got.to_string().parse::<Base>().unwrap(), want, "{input} round-trips");
        }
        assert_eq!(r("alpine").to_string(), "docker://docker.io/library/alpine:latest");
    }

    #[test]
    fn rejects_bad_bases() {
        for (input, kind) in [
            ("", crate::ErrorKind::InvalidInput),
            ("oci-archive:", crate::ErrorKind::InvalidInput),
            ("oci:", crate::ErrorKind::InvalidInput),
            ("oci:dir:", crate::ErrorKind::InvalidInput),
            ("docker-archive:x.tar:Bad Name", crate::ErrorKind::InvalidInput),
            ("docker://", crate::ErrorKind::InvalidInput),
            ("docker://a b", crate::ErrorKind::InvalidInput),
            ("./alpine.tar", crate::ErrorKind::InvalidInput),
            ("docker-daemon:alpine:latest", crate::ErrorKind::Unsupported),
            ("containers-storage:x", crate::ErrorKind::Unsupported),
        ] {
            let err = input.parse::<Base>().unwrap_err();
            assert_eq!(err.kind(), kind, "{input}: {err:?}");
        }
        let err = "./alpine.tar".parse::<Base>().unwrap_err();
        assert!(err.to_string().contains("oci-archive:PATH"), "{err}");
    }
}
