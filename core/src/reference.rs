//! Image references (`registry.example.com/team/app:1.0`, `alpine`, `ghcr.io/x/y@sha256:…`),
//! parsed and normalised the way Docker does it.

use crate::digest::is_sha256_digest;
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical registry name in references.
pub const DOCKER_HUB: &str = "docker.io";

/// A fully qualified image reference: registry, repository, and a tag and/or digest.
///
/// A bare name is normalised as Docker does: `alpine` → `docker.io/library/alpine:latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// The registry host (and port): `docker.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `library/alpine`, `team/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference named neither a tag nor a digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker shows: `alpine:latest`, `team/app:1.0`, `ghcr.io/x/y:1`.
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DOCKER_HUB {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            self.name()
        };
        self.push_suffix(&mut out);
        out
    }

    /// The same repository with another digest and no tag.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference { tag: None, digest: Some(digest.to_string()), ..self.clone() }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidReference { input: input.to_string(), reason: reason.to_string() };
        if input.is_empty() {
            return Err(bad("it is empty"));
        }
        if input.len() > 4096 || input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace or is too long"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                if !is_sha256_digest(digest) {
                    return Err(bad("the digest must be sha256: followed by 64 lowercase hex digits"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad("a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_domain(first) {
                    return Err(bad("the registry must be a host name or address with an optional :port"));
                }
                let registry =
                    if first == "index.docker.io" || first == "registry-1.docker.io" { DOCKER_HUB } else { first };
                (registry.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || !repository.split('/').all(valid_path_component) {
            return Err(bad("a repository name is lowercase letters, digits and separators ('.', '_', '__', '-'), in '/'-separated parts"));
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("the name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference { registry, repository, tag, digest })
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // [IPv6]:port
        match rest.split_once(']') {
            Some((addr, after)) => {
                if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                ("", after.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let host_ok = domain.starts_with('[')
        || (!host.is_empty()
            && host.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            }));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_path_component(part: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let bytes = part.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(String, &str, &str, Option<&str>, bool)> = vec![
            ("alpine".into(), "docker.io", "library/alpine", Some("latest"), false),
            ("alpine:3.20".into(), "docker.io", "library/alpine", Some("3.20"), false),
            ("team/app".into(), "docker.io", "team/app", Some("latest"), false),
            ("index.docker.io/team/app:1".into(), "docker.io", "team/app", Some("1"), false),
            ("registry.example.com/hello:1.0".into(), "registry.example.com", "hello", Some("1.0"), false),
            ("localhost/app".into(), "localhost", "app", Some("latest"), false),
            ("127.0.0.1:5000/a/b/c:v_1-2".into(), "127.0.0.1:5000", "a/b/c", Some("v_1-2"), false),
            ("[::1]:5000/app:x".into(), "[::1]:5000", "app", Some("x"), false),
            ("gcr.io/distroless/static:nonroot".into(), "gcr.io", "distroless/static", Some("nonroot"), false),
            (format!("ghcr.io/x/y@{digest}"), "ghcr.io", "x/y", None, true),
            (format!("ghcr.io/x/y:1@{digest}"), "ghcr.io", "x/y", Some("1"), true),
            ("my.reg:443/a__b/c-d.e".into(), "my.reg:443", "a__b/c-d.e", Some("latest"), false),
        ];
        for (input, registry, repository, tag, has_digest) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            // Display round-trips.
            assert_eq!(r.to_string().parse::<Reference>().unwrap(), r, "{input}");
        }
    }

    #[test]
    fn familiar_and_full_names() {
        let r: Reference = "alpine".parse().unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.familiar(), "alpine:latest");
        let r: Reference = "registry.example.com/hello:1.0".parse().unwrap();
        assert_eq!(r.familiar(), "registry.example.com/hello:1.0");
        assert_eq!(r.name(), "registry.example.com/hello");
    }

    #[test]
    fn rejects_bad_references() {
        for input in [
            "",
            "UPPER",
            "a b",
            "app:",
            "app:-x",
            ":tag",
            "a//b",
            "a/",
            "/a",
            "app@sha256:123",
            "app@md5:d41d8cd98f00b204e9800998ecf8427e",
            "reg.io:port/app",
            "reg.io:99999999/app",
            "-reg.io/app",
            "app/Name",
            "a..b",
            "a--",
            "x:y:z",
        ] {
            let err = input.parse::<Reference>().unwrap_err();
            assert!(matches!(err, Error::InvalidReference { .. }), "{input}: {err:?}");
        }
    }
}
