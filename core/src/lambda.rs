//! `--profile lambda`: AWS Lambda's container-image rules, checked before anything is written.
//!
//! The rules come from the Lambda developer guide ("Create a Lambda function using a container
//! image", "Container image settings", "Lambda quotas"); where the guide is silent the check
//! takes the safe side, as the README's Lambda section says:
//!
//! 1. one image manifest (no index, no attestation): a zeroimage build always pushes exactly
//!    one, so this holds by construction;
//! 2. OCI or Docker v2s2 manifest and config media types, and layers of the gzip or plain-tar
//!    media types of those two families (no foreign or non-distributable layers);
//! 3. gzip layers only: zstd is refused; an uncompressed base layer is fine because a push
//!    gzips it, but the program's own layer must be gzip (`--compression none` is refused);
//! 4. os `linux`, architecture `amd64` or `arm64`;
//! 5. an absolute entrypoint that resolves (parent symbolic links followed) to a regular file,
//!    itself not a symbolic link, in the final file system;
//! 6. every file readable, and every directory readable and searchable, by a user that is
//!    neither the owner nor in the group (Lambda runs functions as an unprivileged user and
//!    ignores `USER`), and the entrypoint executable by that user;
//! 7. in every layer, base layers included, each entry's parent directories appear as
//!    directory entries before it (Lambda fails such images with MissingParentDirectory);
//! 8. the total uncompressed size (the layer tars) at most 10 GB (10^9 bytes each).
//!
//! Layers are streamed (decompressed and read entry by entry, contents skipped); only the
//! file system's paths and modes are kept in memory.

use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::platform::Platform;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// A set of rules a build checks its image against before writing it (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// AWS Lambda's container-image rules.
    Lambda,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Lambda => "lambda",
        })
    }
}

impl std::str::FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Profile> {
        match s {
            "lambda" => Ok(Profile::Lambda),
            _ => {
                Err(Error::InvalidOption { option: "profile", value: s.to_string(), reason: "expected lambda".into() })
            }
        }
    }
}

/// Lambda's limit on the uncompressed image size: 10 GB.
pub const LAMBDA_MAX_UNCOMPRESSED: u64 = 10_000_000_000;

/// How many paths a violation lists before it says "and N more".
const LIST: usize = 5;

/// What the check needs to know about the build.
pub(crate) struct Candidate<'a> {
    pub platform: &'a Platform,
    /// The image config (with the entrypoint set).
    pub config: &'a Value,
    /// The base's layers, then the program's. A registry layer read for the check is kept in
    /// a temporary file in `scratch` (verified), so the outputs copy it rather than download
    /// it again.
    pub layers: &'a mut [Layer],
    pub scratch: &'a Path,
    /// Whether the last layer is the program's own (a written base has none).
    pub own_layer: bool,
    /// The size limit (always [`LAMBDA_MAX_UNCOMPRESSED`] but in tests).
    pub max_uncompressed: u64,
}

/// Every Lambda rule `candidate` breaks, in words; empty when it is fine.
pub(crate) fn lambda_violations(candidate: &mut Candidate<'_>) -> Result<Vec<String>> {
    let mut violations = Vec::new();

    // Platform.
    let os = candidate.config.get("os").and_then(Value::as_str).unwrap_or_default();
    let arch = candidate.config.get("architecture").and_then(Value::as_str).unwrap_or_default();
    if os != "linux" || !matches!(arch, "amd64" | "arm64") {
        violations.push(format!(
            "the platform is {}; Lambda runs linux/amd64 and linux/arm64 only (pass --platform linux/amd64 or \
             linux/arm64 with a program built for it)",
            candidate.platform
        ));
    }

    // Media types and compression.
    let count = candidate.layers.len();
    for (i, layer) in candidate.layers.iter().enumerate() {
        let own = candidate.own_layer && i + 1 == count;
        let name = layer_name(i, layer, own);
        match layer.media_type.as_str() {
            crate::layer::MEDIA_TYPE_OCI_LAYER_GZIP | crate::layer::MEDIA_TYPE_DOCKER_LAYER_GZIP => {}
            crate::compress::MEDIA_TYPE_OCI_LAYER_TAR | crate::compress::MEDIA_TYPE_DOCKER_LAYER_TAR => {
                if own {
                    violations.push(format!(
                        "{name} is uncompressed; Lambda reads gzip layers only (use --compression gzip)"
                    ));
                }
            }
            crate::compress::MEDIA_TYPE_OCI_LAYER_ZSTD | crate::compress::MEDIA_TYPE_DOCKER_LAYER_ZSTD => {
                violations.push(if own {
                    format!("{name} is zstd-compressed; Lambda reads gzip layers only (use --compression gzip)")
                } else {
                    format!("{name} is zstd-compressed; Lambda reads gzip layers only (use a base with gzip layers)")
                });
            }
            other => violations
                .push(format!("{name} has media type {other}; Lambda takes only OCI or Docker v2s2 layers (gzip)")),
        }
    }

    // The file system: parent entries per layer, then the merged tree.
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    let mut total: u64 = 0;
    for (i, layer) in candidate.layers.iter_mut().enumerate() {
        let own = candidate.own_layer && i + 1 == count;
        let read = read_layer(layer, &mut tree, candidate.scratch)?;
        total = total.saturating_add(read.size);
        if !read.missing_parents.is_empty() {
            violations.push(format!(
                "{} has entries without their parent directory entries before them, which Lambda refuses \
                 (MissingParentDirectory): {} (rebuild that layer with its directories, e.g. tar's default)",
                layer_name(i, layer, own),
                listed(&read.missing_parents, read.missing_count)
            ));
        }
    }
    if total > candidate.max_uncompressed {
        violations.push(format!(
            "the layers hold {} uncompressed; Lambda's limit is {} (use a smaller base or program)",
            gb(total),
            gb(candidate.max_uncompressed)
        ));
    }

    // The entrypoint.
    let run = candidate.config.get("config");
    let entrypoint = run.and_then(|c| c.get("Entrypoint")).and_then(Value::as_array).and_then(|e| e.first());
    match entrypoint.and_then(Value::as_str) {
        None => violations.push("the image has no entrypoint; Lambda needs one".to_string()),
        Some(path) if !path.starts_with('/') => {
            violations.push(format!("the entrypoint {path} is not an absolute path; Lambda needs one (--path)"))
        }
        Some(path) => {
            if let Some(problem) = entrypoint_problem(&tree, path) {
                violations.push(problem);
            }
        }
    }

    // Readable by a non-root user.
    let unreadable: Vec<String> = tree
        .iter()
        .filter(|(_, node)| match node.kind {
            Kind::Dir => node.mode & 0o005 != 0o005,
            Kind::File => node.mode & 0o004 == 0,
            Kind::Symlink(_) | Kind::Other => false,
        })
        .map(|(path, node)| format!("/{path} ({:04o})", node.mode & 0o7777))
        .collect();
    if !unreadable.is_empty() {
        let shown: Vec<String> = unreadable.iter().take(LIST).cloned().collect();
        violations.push(format!(
            "not readable by a non-root user, and Lambda runs the function as one: {} (chmod o+r files and o+rx \
             directories in the base)",
            listed(&shown, unreadable.len())
        ));
    }
    Ok(violations)
}

/// The check as an error: every violation, or `Ok` when there is none.
pub(crate) fn check_lambda(candidate: &mut Candidate<'_>) -> Result<()> {
    let violations = lambda_violations(candidate)?;
    if violations.is_empty() {
        return Ok(());
    }
    Err(Error::ProfileViolations { profile: Profile::Lambda.to_string(), violations })
}

/// What is at a path of the merged file system.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(String),
    /// Devices, fifos: no rule applies.
    Other,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    mode: u32,
}

/// What reading one layer found.
struct LayerFacts {
    /// Bytes of the uncompressed tar.
    size: u64,
    /// The first entries (with the parent they lack), and how many lack one.
    missing_parents: Vec<String>,
    missing_count: usize,
}

fn layer_name(index: usize, layer: &Layer, own: bool) -> String {
    if own {
        format!("layer {} (the program's)", index + 1)
    } else {
        format!("base layer {} ({})", index + 1, layer.digest)
    }
}

fn listed(items: &[String], total: usize) -> String {
    let mut out = items.join(", ");
    if total > items.len() {
        out.push_str(&format!(" and {} more", total - items.len()));
    }
    out
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Stream one layer: check its parent entries, apply it to `tree`, measure its tar. A registry
/// layer's bytes are kept in a temporary file in `scratch` for the outputs.
fn read_layer(layer: &mut Layer, tree: &mut BTreeMap<String, Node>, scratch: &Path) -> Result<LayerFacts> {
    let mut copy = if layer.is_remote() {
        let temp = tempfile::Builder::new().prefix(".zeroimage-base-layer-").tempfile_in(scratch);
        Some(temp.map_err(|e| Error::io("create a temporary file in", scratch, e))?)
    } else {
        None
    };
    let facts = {
        let verified = layer.verified_reader()?;
        let raw: Box<dyn Read + '_> = match copy.as_mut() {
            Some(file) => Box::new(Tee { inner: verified, copy: file.as_file_mut() }),
            None => Box::new(verified),
        };
        read_tar(layer, raw, tree)?
    };
    if let Some(file) = copy {
        layer.keep_local_copy(file.into_temp_path());
    }
    Ok(facts)
}

/// Passes what it reads on, and writes a copy of it to `copy`.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// [`read_layer`] over the blob's (verified) bytes `verified`.
fn read_tar(layer: &Layer, verified: Box<dyn Read + '_>, tree: &mut BTreeMap<String, Node>) -> Result<LayerFacts> {
    let read_err = |e: std::io::Error| {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            *e.into_inner().and_then(|inner| inner.downcast::<Error>().ok()).expect("checked above")
        } else {
            Error::io("read layer", layer.source_path(), e)
        }
    };
    let media_type = layer.media_type.as_str();
    let decompressed: Box<dyn Read + '_> = if media_type.ends_with("gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(verified))
    } else if media_type.ends_with("zstd") {
        Box::new(zstd::stream::read::Decoder::new(verified).map_err(read_err)?)
    } else if media_type.ends_with(".tar") || media_type.ends_with("diff.tar") {
        Box::new(verified)
    } else {
        // A layer type we cannot read (already a violation): only its bytes are checked.
        let mut verified = verified;
        std::io::copy(&mut verified, &mut std::io::sink()).map_err(read_err)?;
        return Ok(LayerFacts { size: 0, missing_parents: Vec::new(), missing_count: 0 });
    };
    let mut counting = Counting { inner: decompressed, count: 0 };
    let mut facts = LayerFacts { size: 0, missing_parents: Vec::new(), missing_count: 0 };
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut added: Vec<(String, Node)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut counting);
        for entry in archive.entries().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let raw = entry.path().map_err(read_err)?.to_string_lossy().into_owned();
            let path = normalize(&raw);
            if path.is_empty() {
                continue;
            }
            // Every ancestor must have come before, in this layer.
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                let parent = parts[..i].join("/");
                if !dirs.contains(&parent) {
                    facts.missing_count += 1;
                    if facts.missing_parents.len() < LIST {
                        facts.missing_parents.push(format!("{path} (no {parent}/)"));
                    }
                    break;
                }
            }
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
            if name == ".wh..wh..opq" {
                let prefix = format!("{dir}/");
                tree.retain(|p, _| !p.starts_with(&prefix));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let hidden = if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") };
                let prefix = format!("{hidden}/");
                tree.retain(|p, _| *p != hidden && !p.starts_with(&prefix));
                continue;
            }
            let header = entry.header();
            let mode = header.mode().map_err(read_err)?;
            let kind = match header.entry_type() {
                tar::EntryType::Directory => {
                    dirs.insert(path.clone());
                    Kind::Dir
                }
                tar::EntryType::Symlink => Kind::Symlink(
                    entry.link_name().map_err(read_err)?.map(|l| l.to_string_lossy().into_owned()).unwrap_or_default(),
                ),
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link => Kind::File,
                _ => Kind::Other,
            };
            added.push((path, Node { kind, mode }));
        }
        // The rest of the stream, so the digest is checked and the size is the whole tar.
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(read_err)?;
    }
    facts.size = counting.count;
    for (path, node) in added {
        if node.kind != Kind::Dir {
            let prefix = format!("{path}/");
            tree.retain(|p, _| !p.starts_with(&prefix));
        }
        tree.insert(path, node);
    }
    Ok(facts)
}

/// `./a/b/`, `/a/b`, `a//b` → `a/b`.
fn normalize(path: &str) -> String {
    path.split('/').filter(|p| !p.is_empty() && *p != ".").collect::<Vec<_>>().join("/")
}

/// Why the entrypoint `path` cannot be Lambda's, if it cannot.
fn entrypoint_problem(tree: &BTreeMap<String, Node>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, parents)) = parts.split_last() else {
        return Some(format!("the entrypoint {path} names the root directory, not a program"));
    };
    // Resolve the parent directory, following links (at most 40, as Linux does).
    let mut current: Vec<String> = Vec::new();
    let mut pending: Vec<String> = parents.iter().rev().map(|p| p.to_string()).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(part);
        match tree.get(&current.join("/")).map(|n| &n.kind) {
            Some(Kind::Dir) => {}
            Some(Kind::Symlink(target)) => {
                hops += 1;
                if hops > 40 {
                    return Some(format!("the entrypoint {path} goes through a loop of symbolic links"));
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev().filter(|p| !p.is_empty()).map(str::to_string));
            }
            _ => return Some(format!("the entrypoint {path} does not exist in the image")),
        }
    }
    current.push(last.to_string());
    let resolved = current.join("/");
    match tree.get(&resolved) {
        None => Some(format!("the entrypoint {path} does not exist in the image")),
        Some(Node { kind: Kind::Symlink(target), .. }) => Some(format!(
            "the entrypoint {path} is a symbolic link (to {target}); Lambda needs the program file itself there"
        )),
        Some(Node { kind: Kind::File, mode }) if mode & 0o005 != 0o005 => Some(format!(
            "the entrypoint {path} (mode {:04o}) is not readable and executable by a non-root user (chmod o+rx)",
            mode & 0o7777
        )),
        Some(Node { kind: Kind::File, .. }) => None,
        Some(_) => Some(format!("the entrypoint {path} is not a regular file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::layer::{memory_layer, Compression, Owner, MEDIA_TYPE_OCI_LAYER_GZIP};
    use serde_json::json;

    /// A gzip layer of `(path, mode, kind)`: kind `d` directory, `f` file, `l:TARGET` link.
    fn layer(entries: &[(&str, u32, &str)]) -> Layer {
        memory_layer("test", MEDIA_TYPE_OCI_LAYER_GZIP, &Compression::default(), 0, |tar| {
            for (path, mode, kind) in entries {
                let owner = Owner { uid: 0, gid: 0, mode: *mode };
                let r = match *kind {
                    "d" => tar.dir(path, owner),
                    "f" => tar
                        .file(path, owner, 1, &mut &b"x"[..], Path::new("x"), &CancelToken::new(), |_| {})
                        .map_err(|e| std::io::Error::other(e.to_string())),
                    link => tar.symlink(path, link.strip_prefix("l:").unwrap(), owner),
                };
                r.map_err(|e| Error::io("write", "test", e))?;
            }
            Ok(())
        })
        .unwrap()
    }

    fn config(arch: &str, entrypoint: &str) -> Value {
        json!({"os": "linux", "architecture": arch, "config": {"Entrypoint": [entrypoint]}})
    }

    fn check(arch: &str, entrypoint: &str, layers: &[Layer], max: u64) -> Vec<String> {
        let platform: Platform = format!("linux/{arch}").parse().unwrap();
        let config = config(arch, entrypoint);
        let scratch = std::env::temp_dir();
        lambda_violations(&mut Candidate {
            platform: &platform,
            config: &config,
            layers: &mut layers.to_vec(),
            own_layer: true,
            max_uncompressed: max,
            scratch: &scratch,
        })
        .unwrap()
    }

    fn base() -> Layer {
        layer(&[("etc/", 0o755, "d"), ("etc/passwd", 0o644, "f"), ("bin/", 0o755, "d"), ("bin/sh", 0o777, "l:busybox")])
    }

    fn program() -> Layer {
        layer(&[("app/", 0o755, "d"), ("app/fn", 0o755, "f")])
    }

    #[test]
    fn a_good_image_passes() {
        assert_eq!(check("amd64", "/app/fn", &[base(), program()], LAMBDA_MAX_UNCOMPRESSED), Vec::<String>::new());
        assert_eq!(check("arm64", "/app/fn", &[base(), program()], LAMBDA_MAX_UNCOMPRESSED), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_reported_alone_and_all_at_once() {
        let max = LAMBDA_MAX_UNCOMPRESSED;
        let one = |v: Vec<String>, needle: &str| {
            assert_eq!(v.len(), 1, "{v:#?}");
            assert!(v[0].contains(needle), "{v:#?}");
        };
        one(check("arm", "/app/fn", &[base(), program()], max), "linux/arm");
        one(check("amd64", "app/fn", &[base(), program()], max), "not an absolute path");
        one(check("amd64", "/app/none", &[base(), program()], max), "does not exist");
        one(check("amd64", "/bin/sh", &[base(), program()], max), "symbolic link");
        let linked = layer(&[("app/", 0o755, "d"), ("app/fn", 0o755, "f"), ("app/run", 0o777, "l:fn")]);
        one(check("amd64", "/app/run", &[base(), linked], max), "symbolic link");
        let private = layer(&[("app/", 0o755, "d"), ("app/fn", 0o700, "f")]);
        let v = check("amd64", "/app/fn", &[base(), private], max);
        assert_eq!(v.len(), 2, "{v:#?}"); // not executable, and not readable
        let secret = layer(&[("etc/", 0o755, "d"), ("etc/shadow", 0o600, "f")]);
        one(check("amd64", "/app/fn", &[base(), secret, program()], max), "/etc/shadow (0600)");
        let orphan = layer(&[("etc/app/", 0o755, "d"), ("etc/app/x", 0o644, "f")]);
        one(check("amd64", "/app/fn", &[base(), orphan, program()], max), "MissingParentDirectory");
        one(check("amd64", "/app/fn", &[base(), program()], 1000), "Lambda's limit");
        let zstd = memory_layer("zstd", crate::compress::MEDIA_TYPE_OCI_LAYER_ZSTD, &Compression::zstd(3), 0, |tar| {
            tar.dir("app/", Owner { uid: 0, gid: 0, mode: 0o755 }).map_err(|e| Error::io("write", "test", e))
        })
        .unwrap();
        one(check("amd64", "/app/fn", &[base(), zstd, program()], max), "zstd-compressed");
        let plain = memory_layer("plain", crate::compress::MEDIA_TYPE_OCI_LAYER_TAR, &Compression::none(), 0, |tar| {
            tar.dir("app/", Owner { uid: 0, gid: 0, mode: 0o755 }).map_err(|e| Error::io("write", "test", e))?;
            tar.file(
                "app/fn",
                Owner { uid: 0, gid: 0, mode: 0o755 },
                1,
                &mut &b"x"[..],
                Path::new("x"),
                &CancelToken::new(),
                |_| {},
            )
        })
        .unwrap();
        one(check("amd64", "/app/fn", &[base(), plain.clone()], max), "uncompressed");
        // An uncompressed base layer is fine: the push gzips it.
        assert!(check("amd64", "/app/fn", &[plain, program()], max).is_empty());

        // Everything at once: every violation listed.
        let private = layer(&[("app/", 0o755, "d"), ("app/fn", 0o700, "f")]);
        let v = check("arm", "/app/fn", &[base(), orphan_and_secret(), private], 1000);
        assert_eq!(v.len(), 5, "platform, parents, size, entrypoint, readability: {v:#?}");
    }

    /// `opt/x/` without `opt/`, and a file only its owner reads.
    fn orphan_and_secret() -> Layer {
        layer(&[("opt/x/", 0o755, "d"), ("opt/x/key", 0o600, "f")])
    }

    #[test]
    fn profiles_parse() {
        assert_eq!("lambda".parse::<Profile>().unwrap(), Profile::Lambda);
        let error = "gcp".parse::<Profile>().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(Profile::Lambda.to_string(), "lambda");
    }
}
