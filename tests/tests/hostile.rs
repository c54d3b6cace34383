//! Hostile and outsized bases: memory and time stay bounded on any input (issue 17, items 1–3).
//!
//! - header extensions (GNU long names and links, PAX records) above 1 MiB are refused as
//!   integrity errors, in layers and in base archives, before they are held in memory;
//! - the interpreter look-up is linear in a layer's entry count;
//! - a base with 1,000 layers builds under a small open-file limit, and one with more is
//!   refused early with the limit named.
//!
//! Outputs are checked with skopeo and an independent reader.

use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use zeroimage_tests::process::exec_timeout;
use zeroimage_tests::{dynamic_hello, handmade, scratch_dir, static_hello, zeroimage_bin, ImageLayout, OutputExt};

fn s(p: &Path) -> String {
    p.display().to_string()
}

const LINUX_AMD64: &str = r#"{"architecture": "amd64", "os": "linux", "config": {}}"#;

fn config() -> serde_json::Value {
    serde_json::from_str(LINUX_AMD64).unwrap()
}

/// `zeroimage ARGS…` under `ulimit -v` (address space, KiB) and `ulimit -n`, killed after
/// `timeout`.
fn zeroimage_limited(args: &[&str], memory_kib: Option<u64>, files: Option<u32>, timeout: Duration) -> Output {
    let mut script = String::new();
    if let Some(kib) = memory_kib {
        script.push_str(&format!("ulimit -v {kib} && "));
    }
    if let Some(n) = files {
        script.push_str(&format!("ulimit -n {n} && "));
    }
    script.push_str("exec \"$0\" \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(zeroimage_bin()).args(args);
    exec_timeout(&mut cmd, timeout)
}

/// A gzip layer tar with one entry whose extension (made by the `tar` crate) is `size` bytes.
fn layer_with_extension(kind: &str, size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_mtime(0);
    let long = "d/".repeat(size / 2);
    match kind {
        "long name" => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(1);
            builder.append_data(&mut header, &long, &b"x"[..]).unwrap();
        }
        "long link" => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, "lib64", &long).unwrap();
        }
        "pax" => {
            builder.append_pax_extensions([("path", long.as_bytes())]).unwrap();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(1);
            builder.append_data(&mut header, "short", &b"x"[..]).unwrap();
        }
        _ => unreachable!(),
    }
    builder.into_inner().unwrap()
}

#[test]
fn oversized_header_extensions_are_integrity_errors() {
    let dir = scratch_dir();
    let dynamic = dynamic_hello(dir.path());
    for kind in ["long name", "long link", "pax"] {
        // 8 MiB: refused without being read whole (the old reader held any size, several
        // times over: a 1 GiB long name took 3.2 GB).
        let layer = layer_with_extension(kind, 8 << 20);
        let files = handmade::oci_layout_files(&[layer], config(), Some("base"));
        let layout = dir.path().join(format!("layout-{}", kind.replace(' ', "-")));
        handmade::write_dir(&layout, &files);
        let out = dir.path().join("out.tar");
        let failed = zeroimage_limited(
            &["build", &s(&dynamic), "--from", &format!("oci:{}:base", layout.display()), "-o", &s(&out)],
            Some(1 << 20), // 1 GiB of address space
            None,
            Duration::from_secs(120),
        );
        failed.assert_failure(kind);
        let stderr = failed.stderr_text();
        assert!(stderr.contains("is not a valid image"), "{kind}: {stderr}");
        assert!(stderr.contains("header extension") && stderr.contains("1048576"), "{kind}: {stderr}");
        assert!(!out.exists(), "{kind}");
    }

    // A base archive whose own tar has an oversized long name.
    let hello = static_hello(dir.path());
    let files = handmade::oci_layout_files(&[handmade::layer_tar(&[("etc/x", b"x", 0o644)])], config(), None);
    let archive = dir.path().join("archive.tar");
    handmade::write_tar(&archive, &files);
    let mut bytes = fs::read(&archive).unwrap();
    while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|b| *b == 0) {
        bytes.truncate(bytes.len() - 512);
    }
    bytes.extend(layer_with_extension("long name", 4 << 20));
    fs::write(&archive, bytes).unwrap();
    let out = dir.path().join("out2.tar");
    let failed = zeroimage_limited(
        &["build", &s(&hello), "--from", &format!("oci-archive:{}", archive.display()), "-o", &s(&out)],
        None,
        None,
        Duration::from_secs(120),
    );
    failed.assert_failure("archive with a long name");
    assert!(failed.stderr_text().contains("1048576"), "{}", failed.stderr_text());
    assert!(!out.exists());
}

/// A layer (plain tar, uncompressed) with `count` empty files in one directory.
fn many_files_layer(count: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    builder.append_data(&mut header.clone(), "usr/", &[][..]).unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    for i in 0..count {
        builder.append_data(&mut header.clone(), format!("usr/f{i:07}"), &[][..]).unwrap();
    }
    builder.into_inner().unwrap()
}

/// An OCI layout whose one layer is the uncompressed tar `layer`.
fn uncompressed_layout(dir: &Path, layer: Vec<u8>) {
    let mut files = BTreeMap::new();
    let diff_id = zeroimage_tests::sha256_digest(&layer);
    let layer = handmade::add_blob(&mut files, "application/vnd.oci.image.layer.v1.tar", layer);
    let mut config = config();
    config["rootfs"] = json!({"type": "layers", "diff_ids": [diff_id]});
    let config = handmade::add_blob(&mut files, handmade::CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).unwrap());
    let manifest =
        json!({"schemaVersion": 2, "mediaType": handmade::MANIFEST_MEDIA_TYPE, "config": config, "layers": [layer]});
    let mut manifest =
        handmade::add_blob(&mut files, handmade::MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap());
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": "base"});
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [manifest]})).unwrap(),
    );
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    handmade::write_dir(dir, &files);
}

#[test]
fn interpreter_look_up_is_linear_in_entries() {
    let dir = scratch_dir();
    let dynamic = dynamic_hello(dir.path());
    let layout = dir.path().join("many");
    // 150,000 files: the old look-up (quadratic) took minutes; a linear one takes seconds.
    uncompressed_layout(&layout, many_files_layer(150_000));
    let out = dir.path().join("out.tar");
    let started = Instant::now();
    let failed = zeroimage_limited(
        &["build", &s(&dynamic), "--from", &format!("oci:{}:base", layout.display()), "-o", &s(&out)],
        None,
        None,
        Duration::from_secs(120),
    );
    let elapsed = started.elapsed();
    failed.assert_failure("a dynamic program on a base without its interpreter");
    assert!(failed.stderr_text().contains("dynamically linked"), "{}", failed.stderr_text());
    assert!(elapsed < Duration::from_secs(40), "the look-up over 150,000 entries took {elapsed:?}");
    assert!(!out.exists());
}

/// An OCI layout with `count` one-file gzip layers.
fn many_layers_layout(dir: &Path, count: usize) {
    let layers: Vec<Vec<u8>> =
        (0..count).map(|i| handmade::layer_tar(&[(&format!("l/{i}"), i.to_string().as_bytes(), 0o644)])).collect();
    handmade::write_dir(dir, &handmade::oci_layout_files(&layers, config(), Some("base")));
}

#[test]
fn a_thousand_layers_build_with_few_files_open_and_more_are_refused() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = dir.path().join("thousand");
    many_layers_layout(&layout, 1000);
    let base = format!("oci:{}:base", layout.display());
    // 256 open files: the old sinks kept one file (and one thread) per layer until the end.
    let archive = dir.path().join("out.tar");
    zeroimage_limited(
        &["build", &s(&hello), "--from", &base, "-o", &s(&archive)],
        None,
        Some(256),
        Duration::from_secs(300),
    )
    .assert_success("1000 layers to an archive under ulimit -n 256");
    let image = ImageLayout::open(&archive).image().clone();
    assert_eq!(image.layers.len(), 1001);
    let inspected = zeroimage_tests::skopeo_inspect(&format!("oci-archive:{}", archive.display()));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1001);
    let out_layout = dir.path().join("out-layout");
    zeroimage_limited(
        &["build", &s(&hello), "--from", &base, "-o", &format!("oci:{}:x", out_layout.display())],
        None,
        Some(256),
        Duration::from_secs(300),
    )
    .assert_success("1000 layers to a layout under ulimit -n 256");
    assert_eq!(ImageLayout::read_dir(&out_layout).unwrap().image().layers.len(), 1001);

    let too_many = dir.path().join("too-many");
    many_layers_layout(&too_many, 1001);
    let out = dir.path().join("refused.tar");
    let started = Instant::now();
    let failed = zeroimage_limited(
        &["build", &s(&hello), "--from", &format!("oci:{}:base", too_many.display()), "-o", &s(&out)],
        None,
        Some(256),
        Duration::from_secs(120),
    );
    failed.assert_failure("1001 layers");
    let stderr = failed.stderr_text();
    assert!(stderr.contains("1001 layers is not supported") && stderr.contains("at most 1000 layers"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "refused late: {:?}", started.elapsed());
    assert!(!out.exists());
}
