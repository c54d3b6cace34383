//! The OCI image-layout directory sink (`oci:DIR[:TAG]`): blobs are added by content, and
//! `index.json` is rewritten atomically with our manifest replacing any of the same name.
//! The directory is locked (`flock`) from the first blob to the new `index.json`, so
//! concurrent builds into one layout keep every tag; a write that fails removes what it
//! added.

use super::archive::{blob_path, manifest_descriptor, OCI_LAYOUT};
use super::copy::copy_layer;
use super::{write_atomic, AtomicFile, WriteContext};
use crate::error::{Error, Result};
use crate::image::{canonical_json, Image, ImageIndex, MEDIA_TYPE_OCI_INDEX};
use crate::layer::Layer;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// A layout with the image's blobs added and the directory locked; [`commit`](Self::commit)
/// replaces `index.json` and unlocks. Dropped without commit, it removes the blobs, files and
/// directories it added, then unlocks: the directory is as it was found.
pub(super) struct Staged {
    index_path: PathBuf,
    index: Vec<u8>,
    /// Files this write created, to remove again unless committed.
    added: Vec<PathBuf>,
    /// Directories this write created, outermost first.
    created: Vec<PathBuf>,
    committed: bool,
    /// Holds the lock (on the layout directory itself) until dropped, after the clean-up.
    _lock: File,
}

impl Staged {
    /// Replace `index.json` (atomically): the image is in the layout.
    pub(super) fn commit(mut self) -> Result<()> {
        write_atomic(&self.index_path, &self.index)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for file in self.added.iter().rev() {
            let _ = fs::remove_file(file);
        }
        for dir in self.created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Lock the layout `dir` (creating it if needed) against other zeroimage builds, add the
/// image's blobs, and prepare the new `index.json`.
pub(super) fn stage(dir: &Path, tag: Option<&str>, image: &Image, ctx: &WriteContext<'_>) -> Result<Staged> {
    let layers: Vec<&Layer> = image.layers.iter().collect();
    let small = [
        (image.config_digest.as_str(), image.config.as_slice()),
        (image.manifest_digest.as_str(), image.manifest.as_slice()),
    ];
    stage_blobs(dir, tag, &layers, &small, manifest_descriptor(image, None), ctx)
}

/// [`stage`] for an index: every image's blobs, and the index named in `index.json`.
pub(super) fn stage_index(dir: &Path, tag: Option<&str>, index: &ImageIndex, ctx: &WriteContext<'_>) -> Result<Staged> {
    let layers = super::index::unique_layers(index);
    let small = super::index::small_blobs(index);
    stage_blobs(dir, tag, &layers, &small, super::index::index_descriptor(index, None), ctx)
}

/// Lock `dir`, add `layers` and the `small` blobs (each unless present), and prepare an
/// `index.json` naming `descriptor` (a manifest's or an index's).
fn stage_blobs(
    dir: &Path,
    tag: Option<&str>,
    layers: &[&Layer],
    small: &[(&str, &[u8])],
    mut descriptor: Value,
    ctx: &WriteContext<'_>,
) -> Result<Staged> {
    let mut created = Vec::new();
    let lock = lock_dir(dir, &mut created)?;
    let mut staged = Staged {
        index_path: dir.join("index.json"),
        index: Vec::new(),
        added: Vec::new(),
        created,
        committed: false,
        _lock: lock,
    };
    let index_path = staged.index_path.clone();

    // Read the existing index first: a corrupt one is an error before anything is written.
    let mut index = read_index(dir, &index_path)?;

    for sub in [dir.join("blobs"), dir.join("blobs").join("sha256")] {
        match fs::create_dir(&sub) {
            Ok(()) => staged.created.push(sub),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && sub.is_dir() => {}
            Err(e) => return Err(Error::io("create directory", &sub, e)),
        }
    }
    let total: u64 =
        layers.iter().map(|l| l.size).sum::<u64>() + small.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
    let mut done = 0u64;
    for layer in layers {
        let dest = dir.join(blob_path(&layer.digest));
        if !blob_present(&dest, layer.size) {
            let new = fs::symlink_metadata(&dest).is_err();
            let mut out = AtomicFile::create(&dest)?;
            let temp_path = out.path().to_path_buf();
            let check = copy_layer(layer, out.file(), &temp_path, ctx.cancel, |n| ctx.report(done + n, total))?;
            out.commit_after(|| check.wait())?;
            if new {
                staged.added.push(dest);
            }
        }
        done += layer.size;
    }
    for (digest, bytes) in small {
        let dest = dir.join(blob_path(digest));
        if !blob_present(&dest, bytes.len() as u64) {
            let new = fs::symlink_metadata(&dest).is_err();
            write_atomic(&dest, bytes)?;
            if new {
                staged.added.push(dest);
            }
        }
    }
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        write_atomic(&layout, OCI_LAYOUT)?;
        staged.added.push(layout);
    }

    let ref_name = tag.map(str::to_string).or_else(|| ctx.tags.first().and_then(|t| t.tag().map(str::to_string)));
    let ref_name = ref_name.unwrap_or_else(|| "latest".to_string());
    let full_name = ctx.tags.first().map(|t| t.to_string());
    let mut annotations = json!({"org.opencontainers.image.ref.name": ref_name});
    if let Some(full_name) = full_name {
        annotations["io.containerd.image.name"] = json!(full_name);
    }
    descriptor["annotations"] = annotations;
    let manifests = index["manifests"].as_array_mut().expect("checked above");
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() != Some(ref_name.as_str()));
    manifests.push(descriptor);
    staged.index = canonical_json(&index);
    ctx.report(total, total);
    Ok(staged)
}

/// Open `dir` (created if missing; then added to `created`) and take an exclusive `flock` on
/// it, waiting for any other build holding it. Builds that update one layout at once so
/// take turns reading, changing and replacing its `index.json`, and none loses a tag.
fn lock_dir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<File> {
    loop {
        created.clear();
        match fs::create_dir(dir) {
            Ok(()) => created.push(dir.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", dir, e)),
        }
        let file = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
        flock(&file).map_err(|e| Error::io("lock", dir, e))?;
        // A build that created the directory and then failed removes it again: if that
        // happened while we waited, we hold a lock on a directory that is gone.
        if same_file(&file, dir) {
            return Ok(file);
        }
    }
}

#[cfg(unix)]
fn flock(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).map_err(std::io::Error::from)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn flock(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.is_dir()
}

/// The layout's `index.json`, or an empty index when there is none yet; one that is not an
/// OCI image index is an error.
pub(super) fn read_index(dir: &Path, index_path: &Path) -> Result<Value> {
    match fs::read(index_path) {
        Ok(bytes) => {
            serde_json::from_slice::<Value>(&bytes).ok().filter(|v| v["manifests"].is_array()).ok_or_else(|| {
                Error::InvalidTransport {
                    what: "output",
                    input: format!("oci:{}", dir.display()),
                    reason: "its index.json is not an OCI image index; choose an empty or new directory".into(),
                }
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": []}))
        }
        Err(e) => Err(Error::io("read", index_path, e)),
    }
}

pub(super) fn blob_present(path: &Path, size: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}
