//! Looking up a path in a base's merged file system, by reading its layers (tar, gzip).
//!
//! Used for the dynamic-program check: does the base have the program's interpreter? The
//! layers are applied in order with OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`), and symbolic
//! links along the path (e.g. `/lib64` → `usr/lib64`) are followed.

use super::tar_reader::{Kind, Streamed, TarError, TarReader};
use crate::cancel::{CancelToken, CancellableReader};
use crate::error::{Error, Result};
use crate::layer::{Layer, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER_GZIP};
use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// What is at a path of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(String),
    /// A symbolic link no path can be resolved through (its target is longer than `PATH_MAX`).
    Dangling,
}

/// Whether `path` (absolute) names something other than a directory in the file system that
/// `layers` make, following symbolic links. Layers in a format we cannot read (zstd) count as
/// having no files.
///
/// Every layer read is read to its end, so its digest is checked. A registry layer is
/// downloaded once: its bytes are kept in a temporary file in `scratch` (next to the output)
/// and the outputs copy it from there.
pub(crate) fn has_file(layers: &mut [Layer], path: &str, scratch: &Path, cancel: &CancelToken) -> Result<bool> {
    Ok(Tree::read(layers, scratch, cancel)?.has_file(path))
}

/// The merged file system of a base's layers (paths and what they are, no contents); read
/// as [`has_file`] reads it.
pub(crate) struct Tree(BTreeMap<String, Node>);

impl Tree {
    pub(crate) fn read(layers: &mut [Layer], scratch: &Path, cancel: &CancelToken) -> Result<Tree> {
        let mut tree: BTreeMap<String, Node> = BTreeMap::new();
        for layer in layers {
            apply_layer(&mut tree, layer, scratch, cancel)?;
        }
        Ok(Tree(tree))
    }

    /// Whether `path` (absolute) names something other than a directory, following symlinks.
    pub(crate) fn has_file(&self, path: &str) -> bool {
        matches!(resolve(&self.0, path), Some(Node::File))
    }

    /// What `path` (absolute) itself is when it is not a directory: `a symlink to TARGET` or
    /// `a file`; `None` for a directory or nothing. Symlinks along the parents are not followed.
    pub(crate) fn non_directory(&self, path: &str) -> Option<String> {
        match self.0.get(&normalize(path))? {
            Node::Dir => None,
            Node::File => Some("a file".into()),
            Node::Symlink(target) => Some(format!("a symlink to {target}")),
            Node::Dangling => Some("a symlink".into()),
        }
    }
}

fn apply_layer(
    tree: &mut BTreeMap<String, Node>,
    layer: &mut Layer,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<()> {
    let gzip = match layer.media_type.as_str() {
        MEDIA_TYPE_OCI_LAYER_GZIP | MEDIA_TYPE_DOCKER_LAYER_GZIP => true,
        "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => false,
        _ => return Ok(()),
    };
    let mut copy = if layer.is_remote() {
        let temp = tempfile::Builder::new().prefix(".zeroimage-base-layer-").tempfile_in(scratch);
        Some(temp.map_err(|e| Error::io("create a temporary file in", scratch, e))?)
    } else {
        None
    };
    {
        let verified = layer.verified_reader()?;
        let raw: Box<dyn Read + '_> = match copy.as_mut() {
            Some(file) => Box::new(Tee { inner: verified, copy: file.as_file_mut() }),
            None => Box::new(verified),
        };
        let reader: Box<dyn Read + '_> = if gzip { Box::new(MultiGzDecoder::new(raw)) } else { raw };
        // Checked on the decompressed side too: a gzip bomb expands a lot from one read.
        let reader = Box::new(CancellableReader { inner: reader, cancel });
        read_entries(tree, reader, layer)?;
    }
    if let Some(file) = copy {
        layer.keep_local_copy(file.into_temp_path());
    }
    Ok(())
}

/// Passes what it reads on, and writes a copy of it to `copy`.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Apply the tar stream `reader` of `layer` to `tree`, then read the stream to its end.
///
/// Linear in the layer's entries (each one costs a few tree look-ups), and bounded in memory:
/// header extensions are capped by the tar reader, and names longer than Linux's `PATH_MAX`
/// (which no program can open) are not kept.
fn read_entries(tree: &mut BTreeMap<String, Node>, reader: Box<dyn Read + '_>, layer: &Layer) -> Result<()> {
    let read_err = |e: std::io::Error| {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            *e.into_inner().and_then(|inner| inner.downcast::<Error>().ok()).expect("checked above")
        } else {
            Error::io("read layer", layer.source_path(), e)
        }
    };
    let tar_err = |e: TarError| match e {
        TarError::Io(e) => read_err(e),
        TarError::Malformed(reason) => Error::InvalidBase {
            base: layer.source_path().display().to_string(),
            reason: format!("layer {} is not a valid tar archive: {reason}", layer.digest),
        },
    };
    // Whiteouts hide what lower layers have; entries of this layer are added after them.
    let mut added: Vec<(String, Node)> = Vec::new();
    let mut archive = TarReader::new(Streamed(reader));
    while let Some(entry) = archive.next_entry().map_err(tar_err)? {
        if entry.path.len() > PATH_MAX {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path);
        let path = normalize(&raw);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            remove_under(tree, dir);
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            let hidden = if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") };
            tree.remove(&hidden);
            remove_under(tree, &hidden);
        } else if !path.is_empty() {
            let node = match entry.kind {
                Kind::Dir => Node::Dir,
                Kind::Symlink if entry.link.len() >= PATH_MAX => Node::Dangling,
                Kind::Symlink => Node::Symlink(String::from_utf8_lossy(&entry.link).into_owned()),
                _ => Node::File,
            };
            added.push((path, node));
        }
    }
    // The rest of the stream (after the end-of-archive blocks), so the digest is checked.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(read_err)?;
    for (path, node) in added {
        if node != Node::Dir {
            // A file or link replaces a directory and everything under it.
            remove_under(tree, &path);
        }
        tree.insert(path, node);
    }
    Ok(())
}

/// Linux's `PATH_MAX`: longer names cannot be opened, so cannot be the path looked up.
const PATH_MAX: usize = 4096;

/// Remove everything strictly under the directory `dir` (`""`: the root): the keys starting
/// `dir/`, one contiguous range of the sorted tree.
fn remove_under(tree: &mut BTreeMap<String, Node>, dir: &str) {
    if dir.is_empty() {
        tree.clear();
        return;
    }
    let prefix = format!("{dir}/");
    // `0` sorts right after `/`: every key starting with `dir/` is below `dir0`.
    let end = format!("{dir}0");
    let doomed: Vec<String> = tree.range(prefix..end).map(|(k, _)| k.clone()).collect();
    for key in doomed {
        tree.remove(&key);
    }
}

/// `./a/b/`, `/a/b`, `a//b` → `a/b`.
fn normalize(path: &str) -> String {
    path.split('/').filter(|p| !p.is_empty() && *p != ".").collect::<Vec<_>>().join("/")
}

/// A directory no entry names but entries are under (layers need not list parents).
fn implicit_dir<'t>(tree: &'t BTreeMap<String, Node>, path: &str) -> Option<&'t Node> {
    let prefix = format!("{path}/");
    tree.range(prefix.clone()..).next().filter(|(k, _)| k.starts_with(&prefix)).map(|_| &Node::Dir)
}

/// Follow `path` through the tree, resolving symbolic links (at most 40, as Linux does).
fn resolve<'t>(tree: &'t BTreeMap<String, Node>, path: &str) -> Option<&'t Node> {
    let mut pending: Vec<String> = path.split('/').rev().filter(|p| !p.is_empty()).map(str::to_string).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    let mut node: Option<&Node> = Some(&Node::Dir);
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                node = Some(&Node::Dir);
                continue;
            }
            _ => {}
        }
        if !matches!(node, Some(Node::Dir)) {
            return None;
        }
        current.push(part);
        let joined = current.join("/");
        node = tree.get(&joined).or_else(|| implicit_dir(tree, &joined));
        if let Some(Node::Symlink(target)) = node {
            hops += 1;
            if hops > 40 {
                return None;
            }
            current.pop();
            if target.starts_with('/') {
                current.clear();
            }
            pending.extend(target.split('/').rev().filter(|p| !p.is_empty()).map(str::to_string));
            node = Some(&Node::Dir);
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{memory_layer, Compression, Owner};
    use std::path::Path;

    const DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o755 };

    fn layer(entries: &[(&str, Option<&str>)]) -> Layer {
        memory_layer("test", MEDIA_TYPE_OCI_LAYER_GZIP, &Compression::default(), 0, |tar| {
            for (path, link) in entries {
                let r = if path.ends_with('/') {
                    tar.dir(path, DIR)
                } else if let Some(target) = link {
                    tar.symlink(path, target, DIR)
                } else {
                    tar.file(path, DIR, 1, &mut &b"x"[..], Path::new("x"), &CancelToken::new(), |_| {})?;
                    Ok(())
                };
                r.map_err(|e| Error::io("write", "test", e))?;
            }
            Ok(())
        })
        .unwrap()
    }

    /// A plain-tar layer holding exactly `bytes`.
    fn raw_layer(bytes: &[u8]) -> Layer {
        let digest = crate::digest::sha256_digest(bytes);
        Layer {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            diff_id: digest,
            source: crate::layer::BlobSource::Memory {
                name: std::sync::Arc::from(Path::new("raw")),
                bytes: bytes.into(),
            },
        }
    }

    #[test]
    fn layers_without_end_blocks_and_empty_layers() {
        // Found by the tar fuzz target: a stream read again after its end (a layer without the
        // end-of-archive blocks, as umoci 0.4.7 writes, or an empty one) panicked the hasher.
        let scratch = std::env::temp_dir();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        header.set_mode(0o644);
        builder.append_data(&mut header, "lib/ld.so", &b"x"[..]).unwrap();
        let mut bytes = builder.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024);
        for layer in [raw_layer(&bytes), raw_layer(b"")] {
            let expected = layer.size > 0;
            assert_eq!(has_file(&mut [layer], "/lib/ld.so", &scratch, &CancelToken::new()).unwrap(), expected);
        }
        let err = has_file(&mut [raw_layer(&[7u8; 700])], "/x", &scratch, &CancelToken::new()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Integrity, "{err}");
    }

    #[test]
    fn follows_links_and_whiteouts() {
        let lower = layer(&[
            ("usr/", None),
            ("usr/lib64/", None),
            ("usr/lib64/ld-linux-x86-64.so.2", None),
            ("lib64", Some("usr/lib64")),
            ("etc/", None),
            ("etc/a", None),
            ("etc/b", None),
            ("opt/", None),
            ("opt/x", None),
            ("abs", Some("/etc/a")),
        ]);
        let upper = layer(&[("etc/.wh.a", None), ("opt/.wh..wh..opq", None), ("opt/y", None)]);
        let mut layers = [lower, upper];
        let scratch = std::env::temp_dir();
        let mut has = |p| has_file(&mut layers, p, &scratch, &CancelToken::new()).unwrap();
        assert!(has("/lib64/ld-linux-x86-64.so.2"));
        assert!(has("/usr/lib64/../lib64/ld-linux-x86-64.so.2"));
        assert!(!has("/lib64"), "a directory is not a file");
        assert!(!has("/etc/a"), "whited out");
        assert!(!has("/abs"), "link to a whited-out file");
        assert!(has("/etc/b"));
        assert!(!has("/opt/x"), "opaque directory");
        assert!(has("/opt/y"), "added in the layer that made it opaque");
        assert!(!has("/nope"));
        assert!(!has_file(&mut [], "/etc/b", &scratch, &CancelToken::new()).unwrap());
    }
}
