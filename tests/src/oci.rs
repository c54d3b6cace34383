//! The OCI tool chain: skopeo, umoci + runc, oci-image-tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::process::{exec, exec_ok, exec_timeout, require_tool, scratch_dir, unique_name};

/// A `skopeo` command with `--insecure-policy` (no `/etc/containers/policy.json` needed).
pub fn skopeo() -> Command {
    let mut cmd = Command::new("skopeo");
    cmd.arg("--insecure-policy");
    cmd
}

/// `skopeo inspect REFERENCE` (e.g. `oci-archive:F`, `oci:DIR:TAG`) as JSON; panics on failure.
pub fn skopeo_inspect(reference: &str) -> Value {
    skopeo_inspect_with::<&str>(&[], reference)
}

/// `skopeo inspect --raw REFERENCE`: the manifest (or index) as stored, parsed.
pub fn skopeo_inspect_raw(reference: &str) -> Value {
    skopeo_inspect_with(&["--raw"], reference)
}

/// `skopeo inspect --raw REFERENCE`: the manifest bytes exactly as stored (hash them for
/// the digest).
pub fn skopeo_inspect_raw_bytes(reference: &str) -> Vec<u8> {
    exec_ok(skopeo().args(["inspect", "--raw", reference])).stdout
}

/// `skopeo inspect --config REFERENCE`: the image config, parsed.
pub fn skopeo_inspect_config(reference: &str) -> Value {
    skopeo_inspect_with(&["--config"], reference)
}

/// `skopeo inspect FLAGS… REFERENCE` as JSON, e.g. with [`crate::Registry::flags`].
pub fn skopeo_inspect_with<S: AsRef<str>>(flags: &[S], reference: &str) -> Value {
    let mut cmd = skopeo();
    cmd.arg("inspect").args(flags.iter().map(AsRef::as_ref)).arg(reference);
    let out = exec_ok(&mut cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!("skopeo inspect {reference} printed no JSON ({err}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// `skopeo copy FLAGS… SRC DEST`; panics on failure.
pub fn skopeo_copy<S: AsRef<str>>(flags: &[S], src: &str, dest: &str) -> Output {
    exec_ok(skopeo().arg("copy").args(flags.iter().map(AsRef::as_ref)).args([src, dest]))
}

/// Copies the one image of an OCI archive into the OCI layout `DIR` under `TAG` (with
/// `skopeo copy oci-archive:ARCHIVE oci:DIR:TAG`), ready for `umoci unpack --image DIR:TAG`.
pub fn oci_archive_to_layout(archive: &Path, dir: &Path, tag: &str) {
    let src = format!("oci-archive:{}", archive.display());
    let dest = format!("oci:{}:{tag}", dir.display());
    skopeo_copy::<&str>(&[], &src, &dest);
}

/// Unpacks a tar archive (any: an OCI archive, a layer) into `dir` with the `tar` crate.
pub fn extract_tar(archive: &Path, dir: &Path) {
    let file = fs::File::open(archive).unwrap_or_else(|err| panic!("cannot open {}: {err}", archive.display()));
    fs::create_dir_all(dir).unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    tar::Archive::new(file).unpack(dir).unwrap_or_else(|err| panic!("cannot extract {}: {err}", archive.display()));
}

/// `oci-image-tool validate --type image DIR`: validates an image layout directory; an
/// archive is first extracted to a temporary directory. Returns the outcome for the caller
/// to judge. (`--type imageLayout` answers "unimplemented" in this old release; `--type
/// image` checks digests and sizes, not architectures or diff_ids.)
pub fn oci_image_tool_validate(path: &Path) -> Output {
    require_tool("oci-image-tool");
    let tmp;
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        tmp = tempfile::tempdir().expect("cannot create a temporary directory");
        extract_tar(path, tmp.path());
        tmp.path().to_path_buf()
    };
    exec(Command::new("oci-image-tool").args(["validate", "--type", "image"]).arg(&dir))
}

/// Unpacks `LAYOUT:TAG` with umoci into a runtime bundle and runs it with runc: the
/// process's `terminal` is turned off and, when `args` is non-empty, `process.args` is
/// replaced by `args` (give the full argv, entrypoint included). Returns the container's
/// outcome; the bundle and container are removed afterwards.
pub fn runc_run(layout: &Path, tag: &str, args: &[&str]) -> Output {
    runc_run_with(layout, tag, |config| {
        if !args.is_empty() {
            config["process"]["args"] = serde_json::json!(args);
        }
    })
}

/// Like [`runc_run`], letting `edit` change the bundle's `config.json` (the OCI runtime
/// spec umoci generated from the image config) before runc starts it.
pub fn runc_run_with(layout: &Path, tag: &str, edit: impl FnOnce(&mut Value)) -> Output {
    require_tool("umoci");
    require_tool("runc");
    let work = scratch_dir();
    let bundle = work.path().join("bundle");
    umoci_unpack(layout, tag, &bundle);

    let config_path = bundle.join("config.json");
    let text = fs::read(&config_path).expect("umoci wrote no config.json");
    let mut config: Value = serde_json::from_slice(&text).expect("config.json is JSON");
    config["process"]["terminal"] = Value::Bool(false);
    edit(&mut config);
    fs::write(&config_path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("cannot write config.json");

    let name = unique_name("zi");
    let state = work.path().join("runc");
    let mut run = Command::new("runc");
    run.arg("--root").arg(&state).args(["run", "-b"]).arg(&bundle).arg(&name);
    let out = exec_timeout(&mut run, Duration::from_secs(120));
    // `runc run` deletes the container when it exits; make sure, then drop the bundle.
    let _ = exec(Command::new("runc").arg("--root").arg(&state).args(["delete", "--force", &name]));
    out
}

/// `buildah` with private storage (vfs) under `dir`, for manifest lists made by another tool.
pub fn buildah(dir: &Path) -> Command {
    require_tool("buildah");
    let mut cmd = Command::new("buildah");
    cmd.arg("--root").arg(dir.join("root")).arg("--runroot").arg(dir.join("runroot")).args(["--storage-driver", "vfs"]);
    cmd
}

/// `umoci unpack --image LAYOUT:TAG BUNDLE` (as root); `BUNDLE` must not exist yet.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    exec_ok(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{tag}", layout.display())).arg(bundle));
}

/// Makes "someone else's image" with umoci alone: creates the OCI layout `LAYOUT` if
/// needed, a new image `TAG` in it, adds `files` (host path → absolute path in the image,
/// mode kept, parents created) as one layer, then applies `config_args` with
/// `umoci config` (e.g. `["--config.entrypoint=/hello", "--architecture=arm64"]`).
///
/// Uses `unpack` + `repack` (umoci 0.4.7's `insert` writes layers without end-of-archive
/// blocks).
pub fn umoci_image(layout: &Path, tag: &str, files: &[(&Path, &str)], config_args: &[&str]) {
    require_tool("umoci");
    let reference = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        exec_ok(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    }
    exec_ok(Command::new("umoci").args(["new", "--image", &reference]));
    if !files.is_empty() {
        let work = scratch_dir();
        let bundle = work.path().join("bundle");
        umoci_unpack(layout, tag, &bundle);
        for (src, dest) in files {
            let target = bundle_path(&bundle, dest);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).expect("cannot create a directory in the rootfs");
            }
            fs::copy(src, &target)
                .unwrap_or_else(|err| panic!("cannot copy {} to {}: {err}", src.display(), target.display()));
        }
        exec_ok(Command::new("umoci").args(["repack", "--image", &reference]).arg(&bundle));
    }
    if !config_args.is_empty() {
        exec_ok(Command::new("umoci").args(["config", "--image", &reference]).args(config_args));
    }
}

fn bundle_path(bundle: &Path, dest: &str) -> PathBuf {
    let relative = dest.trim_start_matches('/');
    assert!(!relative.is_empty() && !relative.split('/').any(|part| part == ".."), "bad path in image: {dest}");
    bundle.join("rootfs").join(relative)
}
