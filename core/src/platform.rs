//! Image platforms (`os/arch[/variant]`), normalised the way containerd and Docker spell them.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The platform an image runs on: `linux/amd64`, `linux/arm64`, `linux/arm/v7`, …
///
/// Parsing normalises the usual spellings (`x86_64` → `amd64`, `aarch64` → `arm64`,
/// `arm64/v8` ≡ `arm64`, `armhf` → `arm/v7`), so two equal platforms compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// Build a platform from its parts, normalising each.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Result<Self> {
        let input = match variant {
            Some(v) => format!("{os}/{architecture}/{v}"),
            None => format!("{os}/{architecture}"),
        };
        let bad = |reason: String| Error::InvalidPlatform { input: input.clone(), reason };
        let os = os.trim().to_ascii_lowercase();
        if os != "linux" {
            return Err(bad(if os.is_empty() {
                "the operating system is empty".into()
            } else {
                format!("only linux images are supported, not {os:?}")
            }));
        }
        let arch = architecture.trim().to_ascii_lowercase();
        let variant = variant.map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
        let (architecture, default_variant): (&str, Option<&str>) = match arch.as_str() {
            "amd64" | "x86_64" | "x86-64" => ("amd64", None),
            "arm64" | "aarch64" => ("arm64", None),
            "arm" | "armhf" | "armv7" | "armv7l" => ("arm", Some("v7")),
            "armel" | "armv6" | "armv6l" => ("arm", Some("v6")),
            "armv5" | "armv5l" => ("arm", Some("v5")),
            "386" | "i386" | "i486" | "i586" | "i686" | "x86" => ("386", None),
            "ppc64le" | "ppc64el" => ("ppc64le", None),
            "ppc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "mips64le" | "mips64el" => ("mips64le", None),
            "mips64" => ("mips64", None),
            "loong64" | "loongarch64" => ("loong64", None),
            "" => return Err(bad("the architecture is empty".into())),
            other => return Err(bad(format!("unknown architecture {other:?}"))),
        };
        let variant = match (architecture, variant.as_deref()) {
            // arm64 has one variant in practice; v8 is its default and is not written.
            ("arm64", None | Some("v8" | "8" | "v8.0")) => None,
            ("arm", None) => default_variant.map(str::to_string),
            ("arm", Some(v @ ("v5" | "v6" | "v7" | "v8"))) => Some(v.to_string()),
            ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => Some(format!("v{v}")),
            ("amd64", Some(v @ ("v1" | "v2" | "v3" | "v4"))) => {
                // v1 is amd64's baseline and is not written.
                (v != "v1").then(|| v.to_string())
            }
            (_, None) => None,
            (arch, Some(v)) => return Err(bad(format!("unknown variant {v:?} for architecture {arch}"))),
        };
        Ok(Platform { os, architecture: architecture.to_string(), variant })
    }

    /// The operating system (`linux`).
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The OCI / Go architecture name (`amd64`, `arm64`, `arm`, …).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant (`v7` for `arm/v7`), when there is one.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => Err(Error::InvalidPlatform {
                input: s.to_string(),
                reason: "expected os/arch or os/arch/variant".into(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("Linux/AMD64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/i686", "linux/386"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/ppc64le", "linux/ppc64le"),
            ("linux/riscv64", "linux/riscv64"),
        ];
        for (input, want) in cases {
            let p: Platform = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.to_string(), want, "{input}");
        }
        assert_eq!("linux/arm64/v8".parse::<Platform>().unwrap(), "linux/aarch64".parse().unwrap());
    }

    #[test]
    fn rejects_bad_platforms() {
        for input in [
            "",
            "linux",
            "amd64",
            "linux/",
            "/amd64",
            "linux/sparc",
            "darwin/arm64",
            "windows/amd64",
            "linux/amd64/v9",
            "linux/arm64/v7",
            "linux/arm/v9",
            "a/b/c/d",
        ] {
            let err = input.parse::<Platform>().unwrap_err();
            assert!(matches!(err, Error::InvalidPlatform { .. }), "{input}: {err:?}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{input}: {err}");
        }
    }
}
