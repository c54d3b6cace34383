//! Layers built from a list of entries: files (from a host path or from bytes), directories
//! and symlinks, each with its mode, owner and mtime. The layer is deterministic: entries are
//! sorted by path, missing parent directories are added (0755, root), and the tar carries no
//! host user names, device numbers or extended attributes.

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::layer::{write_layer, Compression, Layer, Owner};
use crate::media_type::Format;
use crate::progress::{report, ProgressFn, Stage};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What an entry's file content is.
#[derive(Debug, Clone)]
pub enum Content {
    /// Read from a file on the host when the layer is written (streamed, never held whole).
    Path(PathBuf),
    /// Bytes given by the caller (small generated files).
    Bytes(Arc<[u8]>),
}

/// One entry of a layer: a regular file, a directory or a symbolic link.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Absolute path in the image (`/srv/assets/index.html`).
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits (`0o644`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Modification time (seconds since 1970); `None` takes the layer's (`SOURCE_DATE_EPOCH`).
    pub mtime: Option<u64>,
}

/// The kind of an [`Entry`].
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// A regular file.
    File(Content),
    /// A directory.
    Dir,
    /// A symbolic link to `target`.
    Symlink(String),
}

impl Entry {
    /// A regular file at `path` read from `source` on the host, mode 0644, owned by root.
    pub fn file(path: impl Into<String>, source: impl Into<PathBuf>) -> Entry {
        Entry::new(path, EntryKind::File(Content::Path(source.into())), 0o644)
    }

    /// A regular file at `path` holding `bytes`, mode 0644, owned by root.
    pub fn bytes(path: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Entry {
        Entry::new(path, EntryKind::File(Content::Bytes(bytes.into())), 0o644)
    }

    /// A directory at `path`, mode 0755, owned by root.
    pub fn dir(path: impl Into<String>) -> Entry {
        Entry::new(path, EntryKind::Dir, 0o755)
    }

    /// A symbolic link at `path` pointing to `target`, mode 0777, owned by root.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry::new(path, EntryKind::Symlink(target.into()), 0o777)
    }

    fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> Entry {
        Entry { path: path.into(), kind, mode, uid: 0, gid: 0, mtime: None }
    }

    /// The same entry with permission bits `mode`.
    pub fn with_mode(mut self, mode: u32) -> Entry {
        self.mode = mode & 0o7777;
        self
    }

    /// The same entry owned by `uid:gid`.
    pub fn with_owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// The same entry with modification time `mtime`.
    pub fn with_mtime(mut self, mtime: u64) -> Entry {
        self.mtime = Some(mtime);
        self
    }
}

/// How [`Layer::from_entries`] writes a layer.
#[derive(Clone, Default)]
pub struct LayerOptions {
    /// The media-type family of the image the layer goes into.
    pub format: Format,
    /// How the layer is compressed.
    pub compression: Compression,
    /// The mtime of entries that have none (the build's `SOURCE_DATE_EPOCH`).
    pub mtime: u64,
    /// Where the layer's temporary file goes; default: the system's temporary directory.
    pub temp_dir: Option<PathBuf>,
    /// Set it to stop writing; the temporary file disappears.
    pub cancel: CancelToken,
    /// Called with [`Stage::Layer`] events as file content streams in.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for LayerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerOptions")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("mtime", &self.mtime)
            .field("temp_dir", &self.temp_dir)
            .finish_non_exhaustive()
    }
}

/// Check an absolute image path and return it without its leading `/`.
pub(crate) fn normalise(path: &str, option: &'static str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidOption { option, value: path.to_string(), reason: reason.to_string() };
    if !path.starts_with('/') {
        return Err(bad("it must be an absolute path in the image, e.g. /srv/assets"));
    }
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad("it must name something below /"));
    }
    if trimmed.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(bad("it must be normalised, without empty, '.' or '..' parts"));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(bad("it has control characters"));
    }
    Ok(trimmed.to_string())
}

impl Layer {
    /// Write a layer holding `entries`: sorted by path, with every missing parent directory
    /// added (0755, root), streamed through tar → sha256 → compression → sha256 into a
    /// temporary file. Two entries at one path are an error.
    pub fn from_entries(entries: Vec<Entry>, options: &LayerOptions) -> Result<Layer> {
        let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
        for entry in entries {
            let key = normalise(&entry.path, "path")?;
            if tree.contains_key(&key) {
                return Err(Error::InvalidOption {
                    option: "path",
                    value: entry.path.clone(),
                    reason: "two entries of the layer have this path".into(),
                });
            }
            tree.insert(key, entry);
        }
        let parents: Vec<String> = tree
            .keys()
            .flat_map(|k| {
                let parts: Vec<&str> = k.split('/').collect();
                (1..parts.len()).map(move |i| parts[..i].join("/")).collect::<Vec<_>>()
            })
            .collect();
        for parent in parents {
            match tree.get(&parent) {
                Some(Entry { kind: EntryKind::Dir, .. }) => {}
                Some(_) => {
                    return Err(Error::InvalidOption {
                        option: "path",
                        value: format!("/{parent}"),
                        reason: "it is a file or symlink, yet other entries are inside it".into(),
                    })
                }
                None => {
                    tree.insert(parent.clone(), Entry::dir(format!("/{parent}")));
                }
            }
        }
        // Parents sort before their children when `/` sorts first: compare path components.
        let mut ordered: Vec<(String, Entry)> = tree.into_iter().collect();
        ordered.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        let total: u64 = ordered
            .iter()
            .filter_map(|(_, e)| match &e.kind {
                EntryKind::File(Content::Path(p)) => std::fs::metadata(p).ok().map(|m| m.len()),
                EntryKind::File(Content::Bytes(b)) => Some(b.len() as u64),
                _ => None,
            })
            .sum();
        let temp_dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let media_type = options.compression.media_type(options.format);
        let progress = options.progress.as_ref();
        report(progress, Stage::Layer, 0, Some(total));
        let mut done = 0u64;
        write_layer(&temp_dir, media_type, &options.compression, options.mtime, |tar| {
            for (path, entry) in &ordered {
                let owner = Owner { uid: entry.uid, gid: entry.gid, mode: entry.mode };
                tar.set_mtime(entry.mtime.unwrap_or(options.mtime));
                let io_err = |e| Error::io("write layer entry", Path::new(path), e);
                match &entry.kind {
                    EntryKind::Dir => tar.dir(&format!("{path}/"), owner).map_err(io_err)?,
                    EntryKind::Symlink(target) => tar.symlink(path, target, owner).map_err(io_err)?,
                    EntryKind::File(Content::Bytes(bytes)) => tar.bytes(path, owner, bytes).map_err(io_err)?,
                    EntryKind::File(Content::Path(source)) => {
                        let mut file = File::open(source).map_err(|e| Error::io("open", source, e))?;
                        let size = file.metadata().map_err(|e| Error::io("read", source, e))?.len();
                        let start = done;
                        tar.file(path, owner, size, &mut file, source, &options.cancel, |n| {
                            report(progress, Stage::Layer, start + n, Some(total))
                        })?;
                        done += size;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tar_listing(layer: &Layer) -> Vec<(String, u32, u64, u64)> {
        let mut blob = Vec::new();
        layer.open().unwrap().read_to_end(&mut blob).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar_bytes).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.uid().unwrap(), h.mtime().unwrap())
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_parents_first() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("x");
        std::fs::write(&source, b"data").unwrap();
        let options = LayerOptions { mtime: 9, temp_dir: Some(dir.path().into()), ..LayerOptions::default() };
        let entries = || {
            vec![
                Entry::file("/srv/b/x", &source).with_owner(65532, 65532),
                Entry::bytes("/srv/a-file", b"hi".to_vec()).with_mtime(3),
                Entry::symlink("/srv/b/link", "x"),
                Entry::dir("/srv/a").with_mode(0o700),
            ]
        };
        let layer = Layer::from_entries(entries(), &options).unwrap();
        assert_eq!(
            tar_listing(&layer),
            vec![
                ("srv/".into(), 0o755, 0, 9),
                ("srv/a/".into(), 0o700, 0, 9),
                ("srv/a-file".into(), 0o644, 0, 3),
                ("srv/b/".into(), 0o755, 0, 9),
                ("srv/b/link".into(), 0o777, 0, 9),
                ("srv/b/x".into(), 0o644, 65532, 9),
            ]
        );
        let again = Layer::from_entries(entries().into_iter().rev().collect(), &options).unwrap();
        assert_eq!(again.digest, layer.digest, "order of the list does not matter");
    }

    #[test]
    fn bad_entries_are_refused() {
        let options = LayerOptions::default();
        for bad in ["relative", "/", "/a/../b", "/a//b"] {
            assert!(Layer::from_entries(vec![Entry::dir(bad)], &options).is_err(), "{bad}");
        }
        let twice = vec![Entry::dir("/a"), Entry::bytes("/a", b"x".to_vec())];
        assert!(Layer::from_entries(twice, &options).is_err());
        let inside_file = vec![Entry::bytes("/a", b"x".to_vec()), Entry::dir("/a/b")];
        assert!(Layer::from_entries(inside_file, &options).is_err());
    }
}
