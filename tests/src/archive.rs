//! An independent reader of OCI image layouts (as a tar archive or a directory), for
//! assertions. It shares no code with zeroimage: plain `tar`, `flate2`, `sha2` and
//! `serde_json`, and it checks everything it can while it reads.
//!
//! ```no_run
//! use zeroimage_tests::ImageLayout;
//! let layout = ImageLayout::open("hello.tar".as_ref()); // panics on any integrity problem
//! let image = layout.image();
//! assert_eq!(image.config["Entrypoint"], serde_json::json!(["/hello"]));
//! let entry = image.layers[0].entry("hello").expect("the program is in the layer");
//! assert_eq!(entry.mode, 0o755);
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Media types of image indexes (OCI and Docker).
pub const INDEX_MEDIA_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `sha256:<hex>` of a file's content, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()));
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    format!("sha256:{}", hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link.
    Hardlink,
    /// Anything else (devices, fifos…), with its type flag.
    Other(u8),
}

/// The header facts of one tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// The path exactly as stored (long names resolved), e.g. `hello`, `app/`, `./x`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (and setuid/setgid/sticky), e.g. `0o755`.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name, if stored.
    pub uname: String,
    /// Owner group name, if stored.
    pub gname: String,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Content size.
    pub size: u64,
    /// The link target of a symlink or hard link.
    pub link: Option<String>,
    /// `sha256:<hex>` of a regular file's content.
    pub digest: Option<String>,
}

/// The header of a gzip-compressed layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzipHeader {
    /// MTIME (0 means none).
    pub mtime: u32,
    /// FNAME, if present.
    pub filename: Option<Vec<u8>>,
    /// FCOMMENT, if present.
    pub comment: Option<Vec<u8>>,
    /// Whether FEXTRA is present.
    pub extra: bool,
    /// The OS byte.
    pub os: u8,
}

/// One layer of an image: its descriptor, what decompressing it showed, and its entries.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The descriptor's digest (`sha256:…`), which names the blob.
    pub digest: String,
    /// The descriptor's media type.
    pub media_type: String,
    /// The descriptor's size (checked against the blob).
    pub size: u64,
    /// `sha256:…` of the uncompressed tar, recomputed here.
    pub diff_id: String,
    /// The gzip header, for gzip layers.
    pub gzip: Option<GzipHeader>,
    /// The tar entries in order.
    pub entries: Vec<TarEntry>,
    /// Whether the tar ended with its end-of-archive blocks (two zero blocks).
    pub has_end_of_archive: bool,
}

impl Layer {
    /// The entry at `path`, ignoring a leading `./` or `/` and a trailing `/`.
    pub fn entry(&self, path: &str) -> Option<&TarEntry> {
        let want = normalize(path);
        self.entries.iter().find(|entry| normalize(&entry.path) == want)
    }

    /// The normalized paths of all entries, in order (`app/x`, not `./app/x/`).
    pub fn paths(&self) -> Vec<String> {
        self.entries.iter().map(|entry| normalize(&entry.path)).collect()
    }
}

/// One image (a manifest with its config and layers) found through `index.json`.
#[derive(Debug, Clone)]
pub struct Image {
    /// The descriptor that led here (from `index.json` or a nested index): its
    /// `annotations` and `platform` live there.
    pub descriptor: Value,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest, parsed.
    pub manifest: Value,
    /// The manifest's exact bytes.
    pub manifest_bytes: Vec<u8>,
    /// The config's digest.
    pub config_digest: String,
    /// The config, parsed.
    pub config: Value,
    /// The layers, in manifest order.
    pub layers: Vec<Layer>,
}

impl Image {
    /// The recomputed diff_ids of the layers.
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|layer| layer.diff_id.clone()).collect()
    }

    /// The `rootfs.diff_ids` the config declares.
    pub fn config_diff_ids(&self) -> Vec<String> {
        strings(&self.config["rootfs"]["diff_ids"])
    }

    /// `os/architecture[/variant]` from the config.
    pub fn platform(&self) -> String {
        let mut platform = format!(
            "{}/{}",
            self.config["os"].as_str().unwrap_or(""),
            self.config["architecture"].as_str().unwrap_or("")
        );
        if let Some(variant) = self.config["variant"].as_str() {
            platform.push('/');
            platform.push_str(variant);
        }
        platform
    }

    /// An annotation of the descriptor in `index.json` (not of the manifest itself).
    pub fn ref_annotation(&self, key: &str) -> Option<&str> {
        self.descriptor["annotations"][key].as_str()
    }
}

/// Everything read from an OCI image layout, plus the problems found on the way.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// Every regular file by its normalized path (`index.json`, `blobs/sha256/…`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The entries of the outer tar, in order (empty when read from a directory).
    pub entries: Vec<TarEntry>,
    /// `oci-layout`, parsed, if present.
    pub oci_layout: Option<Value>,
    /// `index.json`, parsed.
    pub index: Value,
    /// Docker's `manifest.json`, parsed, if present.
    pub docker_manifest: Option<Value>,
    /// Every image reachable from `index.json` (through nested indexes too), in order.
    pub images: Vec<Image>,
    /// Every integrity problem found: wrong blob digests or sizes, missing blobs, configs
    /// whose diff_ids do not match the layers, a broken `manifest.json`…
    pub problems: Vec<String>,
}

impl ImageLayout {
    /// Reads an OCI archive (a tar) and checks it; panics listing the problems, if any.
    pub fn open(path: &Path) -> ImageLayout {
        let layout = if path.is_dir() { ImageLayout::read_dir(path) } else { ImageLayout::read(path) }
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        assert!(
            layout.problems.is_empty(),
            "{} has integrity problems:\n  {}",
            path.display(),
            layout.problems.join("\n  ")
        );
        layout
    }

    /// Reads an OCI archive (a tar file). `Err` only when it cannot be read at all (not a
    /// tar, no `index.json`); everything else lands in [`ImageLayout::problems`].
    pub fn read(path: &Path) -> Result<ImageLayout, String> {
        let file = fs::File::open(path).map_err(|err| format!("cannot open: {err}"))?;
        let mut archive = tar::Archive::new(file);
        let mut files = BTreeMap::new();
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for entry in archive.entries().map_err(|err| format!("not a tar: {err}"))? {
            let mut entry = entry.map_err(|err| format!("bad tar entry: {err}"))?;
            let (facts, content) = tar_entry(&mut entry, true)?;
            if facts.kind == EntryKind::File {
                let key = normalize(&facts.path);
                if files.insert(key.clone(), content).is_some() {
                    problems.push(format!("{key} appears twice in the archive"));
                }
            }
            entries.push(facts);
        }
        ImageLayout::from_files(files, entries, problems)
    }

    /// Reads an OCI image layout directory (`oci:DIR`).
    pub fn read_dir(dir: &Path) -> Result<ImageLayout, String> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(current) = stack.pop() {
            let listing = fs::read_dir(&current).map_err(|err| format!("cannot list {}: {err}", current.display()))?;
            for item in listing {
                let item = item.map_err(|err| format!("cannot list {}: {err}", current.display()))?;
                let path = item.path();
                let kind = item.file_type().map_err(|err| err.to_string())?;
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let relative = path.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
                    let bytes = fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                    files.insert(relative, bytes);
                }
            }
        }
        ImageLayout::from_files(files, Vec::new(), Vec::new())
    }

    fn from_files(
        files: BTreeMap<String, Vec<u8>>,
        entries: Vec<TarEntry>,
        mut problems: Vec<String>,
    ) -> Result<ImageLayout, String> {
        // Every blob must be named after its content.
        for (path, bytes) in &files {
            if let Some(rest) = path.strip_prefix("blobs/") {
                match rest.split_once('/') {
                    Some(("sha256", name)) => {
                        let actual = sha256_hex(bytes);
                        if actual != name {
                            problems.push(format!("{path} has content sha256:{actual}"));
                        }
                    }
                    _ => problems.push(format!("{path}: not a sha256 blob")),
                }
            }
        }

        let oci_layout = match files.get("oci-layout") {
            None => {
                problems.push("oci-layout is missing".to_string());
                None
            }
            Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Ok(value) => {
                    if value["imageLayoutVersion"] != "1.0.0" {
                        problems.push(format!("oci-layout: unexpected {value}"));
                    }
                    Some(value)
                }
                Err(err) => {
                    problems.push(format!("oci-layout is not JSON: {err}"));
                    None
                }
            },
        };

        let index_bytes = files.get("index.json").ok_or("index.json is missing")?;
        let index: Value =
            serde_json::from_slice(index_bytes).map_err(|err| format!("index.json is not JSON: {err}"))?;
        if index["schemaVersion"] != 2 {
            problems.push(format!("index.json: schemaVersion is {}", index["schemaVersion"]));
        }

        let mut reader = Reader { files: &files, problems: &mut problems, images: Vec::new() };
        reader.walk_index(&index, "index.json", 0);
        let images = reader.images;

        let docker_manifest =
            files.get("manifest.json").and_then(|bytes| match serde_json::from_slice::<Value>(bytes) {
                Ok(value) => Some(value),
                Err(err) => {
                    problems.push(format!("manifest.json is not JSON: {err}"));
                    None
                }
            });
        if let Some(manifest) = &docker_manifest {
            check_docker_manifest(manifest, &files, &images, &mut problems);
        }

        Ok(ImageLayout { files, entries, oci_layout, index, docker_manifest, images, problems })
    }

    /// The only image; panics unless there is exactly one.
    pub fn image(&self) -> &Image {
        assert_eq!(self.images.len(), 1, "expected one image, found {}", self.images.len());
        &self.images[0]
    }

    /// The blob with this digest (`sha256:…`), if present.
    pub fn blob(&self, digest: &str) -> Option<&[u8]> {
        self.files.get(&blob_path(digest)).map(Vec::as_slice)
    }

    /// A summary as JSON (no file contents): for scripts and failure messages.
    pub fn to_json(&self) -> Value {
        json!({
            "files": self.files.iter().map(|(path, bytes)| json!({"path": path, "size": bytes.len()})).collect::<Vec<_>>(),
            "entries": self.entries.iter().map(entry_json).collect::<Vec<_>>(),
            "oci_layout": self.oci_layout,
            "index": self.index,
            "docker_manifest": self.docker_manifest,
            "images": self.images.iter().map(|image| json!({
                "descriptor": image.descriptor,
                "digest": image.digest,
                "manifest": image.manifest,
                "config_digest": image.config_digest,
                "config": image.config,
                "layers": image.layers.iter().map(|layer| json!({
                    "digest": layer.digest,
                    "media_type": layer.media_type,
                    "size": layer.size,
                    "diff_id": layer.diff_id,
                    "has_end_of_archive": layer.has_end_of_archive,
                    "gzip": layer.gzip.as_ref().map(|gz| json!({
                        "mtime": gz.mtime,
                        "filename": gz.filename.as_ref().map(|name| String::from_utf8_lossy(name).into_owned()),
                        "comment": gz.comment.as_ref().map(|text| String::from_utf8_lossy(text).into_owned()),
                        "extra": gz.extra,
                        "os": gz.os,
                    })),
                    "entries": layer.entries.iter().map(entry_json).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "problems": self.problems,
        })
    }
}

fn entry_json(entry: &TarEntry) -> Value {
    let kind = match entry.kind {
        EntryKind::File => "file".to_string(),
        EntryKind::Dir => "dir".to_string(),
        EntryKind::Symlink => "symlink".to_string(),
        EntryKind::Hardlink => "hardlink".to_string(),
        EntryKind::Other(flag) => format!("other({})", flag as char),
    };
    json!({
        "path": entry.path,
        "kind": kind,
        "mode": entry.mode,
        "uid": entry.uid,
        "gid": entry.gid,
        "uname": entry.uname,
        "gname": entry.gname,
        "mtime": entry.mtime,
        "size": entry.size,
        "link": entry.link,
        "digest": entry.digest,
    })
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_path(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("blobs/{algorithm}/{hex}"),
        None => format!("blobs/{digest}"),
    }
}

/// `./a/b/` → `a/b`.
fn normalize(path: &str) -> String {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path.trim_start_matches('/').trim_end_matches('/').to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|item| item.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Reads one tar entry's header facts; with `keep`, returns a regular file's content too.
fn tar_entry<R: Read>(entry: &mut tar::Entry<'_, R>, keep: bool) -> Result<(TarEntry, Vec<u8>), String> {
    let header = entry.header();
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink,
        tar::EntryType::Link => EntryKind::Hardlink,
        other => EntryKind::Other(other.as_byte()),
    };
    let field =
        |name: &str, result: std::io::Result<u64>| result.map_err(|err| format!("{path}: bad {name} field: {err}"));
    let mode = field("mode", header.mode().map(u64::from))? as u32;
    let uid = field("uid", header.uid())?;
    let gid = field("gid", header.gid())?;
    let mtime = field("mtime", header.mtime())?;
    let uname = header.username_bytes().map(|name| String::from_utf8_lossy(name).into_owned()).unwrap_or_default();
    let gname = header.groupname_bytes().map(|name| String::from_utf8_lossy(name).into_owned()).unwrap_or_default();
    let link = entry.link_name_bytes().map(|name| String::from_utf8_lossy(&name).into_owned());
    let size = entry.size();
    let mut content = Vec::new();
    let mut digest = None;
    if kind == EntryKind::File {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|err| format!("{path}: cannot read content: {err}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if keep {
                content.extend_from_slice(&buf[..n]);
            }
        }
        digest = Some(format!("sha256:{}", hex(&hasher.finalize())));
    }
    Ok((TarEntry { path, kind, mode, uid, gid, uname, gname, mtime, size, link, digest }, content))
}

/// Walks indexes and manifests, collecting images and problems.
struct Reader<'a> {
    files: &'a BTreeMap<String, Vec<u8>>,
    problems: &'a mut Vec<String>,
    images: Vec<Image>,
}

impl<'a> Reader<'a> {
    /// The blob a descriptor points to, checked against its size; `None` (with a problem
    /// recorded) when absent or malformed.
    fn blob(&mut self, descriptor: &Value, context: &str) -> Option<(String, &'a [u8])> {
        let files = self.files;
        let Some(digest) = descriptor["digest"].as_str() else {
            self.problems.push(format!("{context}: descriptor without digest: {descriptor}"));
            return None;
        };
        if descriptor["mediaType"].as_str().is_none() {
            self.problems.push(format!("{context}: descriptor {digest} has no mediaType"));
        }
        let Some(bytes) = files.get(&blob_path(digest)) else {
            self.problems.push(format!("{context}: blob {digest} is missing"));
            return None;
        };
        match descriptor["size"].as_u64() {
            Some(size) if size == bytes.len() as u64 => {}
            size => self
                .problems
                .push(format!("{context}: descriptor of {digest} says size {size:?}, blob has {}", bytes.len())),
        }
        Some((digest.to_string(), bytes.as_slice()))
    }

    fn walk_index(&mut self, index: &Value, context: &str, depth: usize) {
        let Some(manifests) = index["manifests"].as_array() else {
            self.problems.push(format!("{context}: no manifests array"));
            return;
        };
        for descriptor in manifests {
            let Some((digest, bytes)) = self.blob(descriptor, context) else {
                continue;
            };
            let parsed: Value = match serde_json::from_slice(bytes) {
                Ok(value) => value,
                Err(err) => {
                    self.problems.push(format!("{digest}: not JSON: {err}"));
                    continue;
                }
            };
            let media_type = descriptor["mediaType"].as_str().unwrap_or("");
            if INDEX_MEDIA_TYPES.contains(&media_type) {
                if depth >= 4 {
                    self.problems.push(format!("{digest}: indexes nested too deep"));
                } else {
                    self.walk_index(&parsed, &digest, depth + 1);
                }
            } else {
                let manifest_bytes = bytes.to_vec();
                if let Some(image) = self.image(descriptor, digest, parsed, manifest_bytes) {
                    self.images.push(image);
                }
            }
        }
    }

    fn image(&mut self, descriptor: &Value, digest: String, manifest: Value, manifest_bytes: Vec<u8>) -> Option<Image> {
        if let (Some(outer), Some(inner)) = (descriptor["mediaType"].as_str(), manifest["mediaType"].as_str()) {
            if outer != inner {
                self.problems.push(format!("{digest}: descriptor says {outer}, manifest says {inner}"));
            }
        }
        let (config_digest, config_bytes) = self.blob(&manifest["config"], &digest)?;
        let config: Value = match serde_json::from_slice(config_bytes) {
            Ok(value) => value,
            Err(err) => {
                self.problems.push(format!("config {config_digest}: not JSON: {err}"));
                return None;
            }
        };
        let mut layers = Vec::new();
        for descriptor in manifest["layers"].as_array().cloned().unwrap_or_default() {
            let Some((layer_digest, bytes)) = self.blob(&descriptor, &digest) else {
                continue;
            };
            let media_type = descriptor["mediaType"].as_str().unwrap_or("").to_string();
            match read_layer(bytes, &media_type) {
                Ok((diff_id, gzip, entries, has_end_of_archive)) => layers.push(Layer {
                    digest: layer_digest,
                    media_type,
                    size: bytes.len() as u64,
                    diff_id,
                    gzip,
                    entries,
                    has_end_of_archive,
                }),
                Err(err) => self.problems.push(format!("layer {layer_digest}: {err}")),
            }
        }
        let image =
            Image { descriptor: descriptor.clone(), digest, manifest, manifest_bytes, config_digest, config, layers };
        if image.diff_ids() != image.config_diff_ids() {
            self.problems.push(format!(
                "{}: config diff_ids {:?} but the layers hash to {:?}",
                image.digest,
                image.config_diff_ids(),
                image.diff_ids()
            ));
        }
        Some(image)
    }
}

type LayerFacts = (String, Option<GzipHeader>, Vec<TarEntry>, bool);

/// Decompresses a layer (gzip or plain tar, told by its magic bytes), hashing the tar as it
/// goes, and lists its entries.
fn read_layer(bytes: &[u8], media_type: &str) -> Result<LayerFacts, String> {
    if media_type.contains("zstd") || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err("zstd layers are not supported by this reader".to_string());
    }
    let is_gzip = bytes.starts_with(&[0x1f, 0x8b]);
    if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
        if !is_gzip {
            return Err(format!("{media_type} but the blob is not gzip"));
        }
    } else if is_gzip {
        return Err(format!("{media_type} but the blob is gzip"));
    }
    let mut tar_bytes = Vec::new();
    let gzip = if is_gzip {
        let mut decoder = MultiGzDecoder::new(bytes);
        decoder.read_to_end(&mut tar_bytes).map_err(|err| format!("gunzip failed: {err}"))?;
        decoder.header().map(|header| GzipHeader {
            mtime: header.mtime(),
            filename: header.filename().map(<[u8]>::to_vec),
            comment: header.comment().map(<[u8]>::to_vec),
            extra: header.extra().is_some(),
            os: header.operating_system(),
        })
    } else {
        tar_bytes = bytes.to_vec();
        None
    };
    let diff_id = sha256_digest(&tar_bytes);
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    for entry in archive.entries().map_err(|err| format!("not a tar: {err}"))? {
        let mut entry = entry.map_err(|err| format!("bad tar entry: {err}"))?;
        entries.push(tar_entry(&mut entry, false)?.0);
    }
    let has_end_of_archive = ends_with_end_of_archive(&tar_bytes);
    Ok((diff_id, gzip, entries, has_end_of_archive))
}

/// Whether a tar ends with (at least) two zero 512-byte blocks after its last entry.
fn ends_with_end_of_archive(tar_bytes: &[u8]) -> bool {
    tar_bytes.len() >= 1024 && tar_bytes.len() % 512 == 0 && tar_bytes[tar_bytes.len() - 1024..].iter().all(|&b| b == 0)
}

/// Docker's `manifest.json`: every `Config` and `Layers` path must exist and be a sound
/// blob, and each entry must match an image of `index.json`.
fn check_docker_manifest(
    manifest: &Value,
    files: &BTreeMap<String, Vec<u8>>,
    images: &[Image],
    problems: &mut Vec<String>,
) {
    let Some(entries) = manifest.as_array() else {
        problems.push("manifest.json is not an array".to_string());
        return;
    };
    for entry in entries {
        let config = entry["Config"].as_str().unwrap_or("");
        if !files.contains_key(config) {
            problems.push(format!("manifest.json: Config {config:?} is missing"));
        }
        let layers = strings(&entry["Layers"]);
        for layer in &layers {
            if !files.contains_key(layer.as_str()) {
                problems.push(format!("manifest.json: layer {layer:?} is missing"));
            }
        }
        let matching = images.iter().find(|image| blob_path(&image.config_digest) == config);
        match matching {
            None => problems.push(format!("manifest.json: Config {config:?} is no image's config in index.json")),
            Some(image) => {
                let expected: Vec<String> = image.layers.iter().map(|layer| blob_path(&layer.digest)).collect();
                if layers != expected {
                    problems.push(format!("manifest.json: Layers {layers:?} differ from the manifest's {expected:?}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        for (input, expected) in
            [("hello", "hello"), ("./hello", "hello"), ("/app/x", "app/x"), ("app/", "app"), ("././a/b/", "a/b")]
        {
            assert_eq!(normalize(input), expected, "{input}");
        }
    }

    #[test]
    fn blob_paths() {
        assert_eq!(blob_path("sha256:abc"), "blobs/sha256/abc");
    }

    #[test]
    fn digests() {
        assert_eq!(sha256_digest(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
