//! Base images: what a build starts `FROM`.

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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Base {
    /// An empty image: the program's layer is the only one.
    #[default]
    Scratch,
}

impl FromStr for Base {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "scratch" => Ok(Base::Scratch),
            "" => Err(Error::InvalidTransport { what: "base", input: s.into(), reason: "it is empty".into() }),
            other => Err(Error::Unsupported {
                what: format!("base {other:?}"),
                hint: Some("this version builds FROM scratch only".into()),
            }),
        }
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Scratch => f.write_str("scratch"),
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
    pub(crate) fn has_file(&self, _path: &str) -> Result<bool> {
        // Scratch has no files at all.
        Ok(false)
    }
}

impl Base {
    /// Resolve the base for `platform`.
    pub(crate) fn resolve(&self, platform: &Platform) -> Result<ResolvedBase> {
        match self {
            Base::Scratch => {
                Ok(ResolvedBase { config: scratch_config(platform), layers: Vec::new(), format: Format::Oci })
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
    }
}
