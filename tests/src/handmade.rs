//! Images made by hand from tar + JSON, byte by byte under the test's control: for
//! fixtures no tool would write (corrupt digests, odd layouts) and for checking readers.
//!
//! ```
//! use zeroimage_tests::handmade;
//! let layer = handmade::layer_tar(&[("hello", b"#!/bin/true\n", 0o755)]);
//! let mut files = handmade::oci_layout_files(
//!     &[layer],
//!     serde_json::json!({"architecture": "amd64", "os": "linux",
//!                        "config": {"Entrypoint": ["/hello"]}}),
//!     Some("latest"),
//! );
//! // Corrupt something, then write the archive:
//! files.insert("extra".into(), b"x".to_vec());
//! let dir = tempfile::tempdir().unwrap();
//! handmade::write_tar(&dir.path().join("image.tar"), &files);
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use crate::archive::{blob_path, sha256_digest};

/// OCI media types used here.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI gzip layer media type.
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An uncompressed layer tar holding regular files `(path, content, mode)`, uid/gid 0,
/// mtime 0, with parent directories added first (mode 0755).
pub fn layer_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs_done: Vec<String> = Vec::new();
    for (path, content, mode) in files {
        let path = path.trim_start_matches('/');
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if !dirs_done.contains(&dir) {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                builder.append_data(&mut header, &dir, std::io::empty()).expect("tar in memory");
                dirs_done.push(dir);
            }
        }
        let mut header = header(tar::EntryType::Regular, *mode, content.len() as u64);
        builder.append_data(&mut header, path, *content).expect("tar in memory");
    }
    builder.into_inner().expect("tar in memory")
}

/// A ustar header: uid/gid 0, mtime 0, owner names empty.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// gzip of `data` (default level, no name, mtime 0).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// The files of an OCI image layout with one image: `layers` (uncompressed tars) are
/// gzipped; `config` gets `rootfs` (type `layers`, the layers' diff_ids) unless it already
/// has one (to make a wrong one on purpose); `index.json`
/// annotates the manifest with `org.opencontainers.image.ref.name` when `ref_name` is set.
/// Change the map as the test needs, then [`write_tar`] or [`write_dir`].
pub fn oci_layout_files(layers: &[Vec<u8>], mut config: Value, ref_name: Option<&str>) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(sha256_digest(tar));
        let blob = gzip(tar);
        layer_descriptors.push(add_blob(&mut files, LAYER_GZIP_MEDIA_TYPE, blob));
    }
    if config.get("rootfs").is_none() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    }
    let config_bytes = serde_json::to_vec(&config).expect("JSON");
    let config_descriptor = add_blob(&mut files, CONFIG_MEDIA_TYPE, config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_descriptor,
        "layers": layer_descriptors,
    });
    let mut manifest_descriptor =
        add_blob(&mut files, MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).expect("JSON"));
    if let Some(name) = ref_name {
        manifest_descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    }
    let index = json!({"schemaVersion": 2, "manifests": [manifest_descriptor]});
    files.insert("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    files.insert("index.json".to_string(), serde_json::to_vec(&index).expect("JSON"));
    files
}

/// Stores `bytes` as a blob and returns its descriptor.
pub fn add_blob(files: &mut BTreeMap<String, Vec<u8>>, media_type: &str, bytes: Vec<u8>) -> Value {
    let digest = sha256_digest(&bytes);
    let descriptor = json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
    files.insert(blob_path(&digest), bytes);
    descriptor
}

/// Writes `files` as a tar archive (directories first, then files in key order).
pub fn write_tar(path: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for name in files.keys() {
        let parts: Vec<&str> = name.split('/').collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for dir in &dirs {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        builder.append_data(&mut header, dir, std::io::empty()).expect("tar in memory");
    }
    for (name, bytes) in files {
        let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        builder.append_data(&mut header, name, bytes.as_slice()).expect("tar in memory");
    }
    let bytes = builder.into_inner().expect("tar in memory");
    fs::write(path, bytes).unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

/// Writes `files` into the directory `dir` (an `oci:DIR` layout).
pub fn write_dir(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|err| panic!("cannot create {}: {err}", parent.display()));
        }
        fs::write(&path, bytes).unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }
}
