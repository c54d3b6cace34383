//! Base images: what a build starts `FROM`.

mod builtin;
mod tree;
mod write;

pub use builtin::{Builtin, BuiltinItem};
pub use write::{write_base, BaseOptions};

use crate::config::scratch_config;
use crate::error::{Error, Result};
use crate::image::Format;
use crate::layer::Layer;
use crate::platform::Platform;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Where a build's base image comes from, parsed from the transport strings skopeo uses.
///
/// | string | base |
/// |---|---|
/// | `scratch` | an empty image |
/// | `builtin:static` | zeroimage's embedded distroless-style base ([`Builtin`]) |
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Base {
    /// An empty image: the program's layer is the only one.
    #[default]
    Scratch,
    /// A base embedded in zeroimage (`builtin:static`).
    Builtin(Builtin),
}

impl FromStr for Base {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "scratch" => Ok(Base::Scratch),
            _ if s.starts_with("builtin:") => Ok(Base::Builtin(s["builtin:".len()..].parse()?)),
            "" => Err(Error::InvalidTransport { what: "base", input: s.into(), reason: "it is empty".into() }),
            other => Err(Error::Unsupported {
                what: format!("base {other:?}"),
                hint: Some("this version builds FROM scratch or builtin:static".into()),
            }),
        }
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Scratch => f.write_str("scratch"),
            Base::Builtin(builtin) => builtin.fmt(f),
        }
    }
}

/// A base image resolved for one platform: its config (as JSON), its layers, its format.
#[derive(Debug)]
pub(crate) struct ResolvedBase {
    pub config: Value,
    pub layers: Vec<Layer>,
    pub format: Format,
}

impl ResolvedBase {
    /// Whether the base's filesystem has a file at `path` (absolute).
    pub(crate) fn has_file(&self, path: &str) -> Result<bool> {
        tree::has_file(&self.layers, path)
    }
}

impl Base {
    /// Resolve the base for `platform`.
    pub(crate) fn resolve(&self, platform: &Platform) -> Result<ResolvedBase> {
        match self {
            Base::Scratch => {
                Ok(ResolvedBase { config: scratch_config(platform), layers: Vec::new(), format: Format::Oci })
            }
            Base::Builtin(builtin) => {
                let layer = builtin.layer()?;
                let config = builtin.config(platform, &layer.diff_id);
                Ok(ResolvedBase { config, layers: vec![layer], format: Format::Oci })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scratch() {
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
        let resolved = Base::Builtin(Builtin::Static).resolve(&platform).unwrap();
        assert!(resolved.has_file("/etc/passwd").unwrap());
        assert!(resolved.has_file("/usr/share/zoneinfo/UTC").unwrap(), "a symlink to a file");
        assert!(!resolved.has_file("/tmp").unwrap(), "a directory");
        assert!(!resolved.has_file("/lib64/ld-linux-x86-64.so.2").unwrap());
        assert!(!resolved.has_file("/lib/ld-musl-x86_64.so.1").unwrap());
        let scratch = Base::Scratch.resolve(&platform).unwrap();
        assert!(!scratch.has_file("/etc/passwd").unwrap());
    }
}
