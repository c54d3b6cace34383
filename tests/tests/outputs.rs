//! Outputs never destroy what they must not: an output that is one of the build's inputs, a
//! device or a pipe is refused; a build that fails (a push refused by a real registry, a
//! tampered base layer) leaves existing archives and layouts exactly as they were and creates
//! nothing; concurrent builds into one `oci:DIR` keep every tag. Layouts are checked with
//! skopeo, which zeroimage did not write.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use zeroimage_tests::oci::skopeo;
use zeroimage_tests::proxy::{Fault, FaultProxy};
use zeroimage_tests::{
    exec, exec_ok, handmade, process::spawn, scratch_dir, sha256_file, static_hello, zeroimage_cmd, OutputExt, Registry,
};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn zeroimage_in(dir: &Path) -> Command {
    let mut cmd = zeroimage_cmd();
    let docker = dir.join("docker-config");
    fs::create_dir_all(&docker).unwrap();
    cmd.current_dir(dir).env("DOCKER_CONFIG", docker).env_remove("REGISTRY_AUTH_FILE").env_remove("SOURCE_DATE_EPOCH");
    cmd
}

fn build(dir: &Path, args: &[&str]) -> Output {
    exec(zeroimage_in(dir).arg("build").args(args))
}

/// Every path under `dir` (relative), with the sha256 of each file's bytes, or `dir` for a
/// directory: what "left as it was" compares.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.insert(name, "dir".into());
                walk(root, &path, out);
            } else {
                out.insert(name, sha256_file(&path));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names in `dir` that zeroimage writes under a temporary name.
fn assert_no_temporary_files(dir: &Path) {
    let leftovers: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("zeroimage-"))
        .collect();
    assert!(leftovers.is_empty(), "left behind in {}: {leftovers:?}", dir.display());
}

/// The `org.opencontainers.image.ref.name`s of a layout's index.json.
fn ref_names(layout: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// A one-layer base (`/etc/base-file`) as an OCI archive and as an OCI layout, tag `latest`.
fn handmade_base(dir: &Path) -> (PathBuf, PathBuf) {
    let layer = handmade::layer_tar(&[("etc/base-file", b"from the base\n", 0o644)]);
    let files = handmade::oci_layout_files(&[layer], json!({"architecture": "amd64", "os": "linux"}), Some("latest"));
    let archive = dir.join("base.tar");
    handmade::write_tar(&archive, &files);
    let layout = dir.join("base-layout");
    handmade::write_dir(&layout, &files);
    (archive, layout)
}

fn assert_refused_output(out: &Output, what: &str) {
    out.assert_failure(what);
    let stderr = out.stderr_text();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid output") && stderr.contains("--output"), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_output_that_is_one_of_the_inputs_is_refused_and_nothing_changes() {
    let dir = scratch_dir();
    let d = dir.path();
    let hello = static_hello(d);
    let (base_archive, base_layout) = handmade_base(d);
    let before = (sha256_file(&hello), sha256_file(&base_archive), snapshot(&base_layout));

    for output in [s(&hello), "hello".into(), format!("oci-archive:{}", s(&hello)), "./sub/../hello".into()] {
        fs::create_dir_all(d.join("sub")).unwrap();
        let out = build(d, &["hello", "-o", &output]);
        assert_refused_output(&out, &format!("-o {output}"));
        assert!(out.stderr_text().contains("the program"), "{}", out.stderr_text());
    }
    let from_archive = format!("oci-archive:{}", s(&base_archive));
    let out = build(d, &["hello", "--from", &from_archive, "-o", "base.tar"]);
    assert_refused_output(&out, "an output over the base archive");
    assert!(out.stderr_text().contains("the base"), "{}", out.stderr_text());
    let from_layout = format!("oci:{}:latest", s(&base_layout));
    for output in [format!("oci:{}:app", s(&base_layout)), s(&base_layout.join("index.json"))] {
        let out = build(d, &["hello", "--from", &from_layout, "-o", &output]);
        assert_refused_output(&out, &format!("-o {output} with the base layout"));
    }
    // `zeroimage base` too.
    let out = exec(zeroimage_in(d).args(["base", &from_archive, "-o", &s(&base_archive)]));
    assert_refused_output(&out, "zeroimage base over its own base");

    assert_eq!((sha256_file(&hello), sha256_file(&base_archive), snapshot(&base_layout)), before);
    assert_no_temporary_files(d);
    // An output beside the inputs is fine, and the image runs its program from the base.
    build(d, &["hello", "--from", &from_layout, "-o", "app.tar"]).assert_success("a build beside its inputs");
}

#[test]
fn archives_are_not_written_over_devices_or_pipes() {
    let dir = scratch_dir();
    let d = dir.path();
    static_hello(d);
    // Our own /dev/null and a FIFO, so a regression cannot replace the machine's.
    let null = d.join("null");
    exec_ok(Command::new("mknod").arg(&null).args(["c", "1", "3"]));
    let fifo = d.join("fifo");
    exec_ok(Command::new("mkfifo").arg(&fifo));
    for (node, is_right_kind) in
        [(&null, FileTypeExt::is_char_device as fn(&fs::FileType) -> bool), (&fifo, FileTypeExt::is_fifo)]
    {
        for output in [s(node), format!("oci-archive:{}", s(node))] {
            let out = build(d, &["hello", "-o", &output]);
            out.assert_failure(&format!("-o {output}"));
            let stderr = out.stderr_text();
            assert!(stderr.contains("not a regular file"), "{stderr}");
            assert!(is_right_kind(&fs::symlink_metadata(node).unwrap().file_type()), "{} was replaced", node.display());
        }
    }
    assert_no_temporary_files(d);
}

#[test]
fn a_failed_push_changes_no_local_output() {
    let registry = Registry::start();
    // A real registry that takes the blobs and then refuses the manifest: the push fails
    // after all the uploads.
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if req.method == "PUT" && req.target.contains("/manifests/") {
            Fault::Status(400)
        } else {
            Fault::Pass
        }
    });
    let dir = scratch_dir();
    let d = dir.path();
    static_hello(d);
    let push = format!("{}/refused/app:1", proxy.addr());

    // An existing archive.
    let archive = d.join("out.tar");
    fs::write(&archive, b"an archive the user keeps").unwrap();
    // An existing layout, from an earlier build with another timestamp (so other blobs).
    let layout = d.join("layout");
    exec_ok(zeroimage_in(d).env("SOURCE_DATE_EPOCH", "1000").args(["build", "hello", "-o", "oci:layout:v1"]));
    let layout_before = snapshot(&layout);

    for output in ["out.tar", "oci:layout:v2", "oci:new-layout:v1"] {
        let out = build(d, &["hello", "-o", output, "--push", &push]);
        out.assert_failure(&format!("-o {output} with a refused push"));
        assert!(out.stderr_text().contains("400"), "{}", out.stderr_text());
    }
    assert!(proxy.seen().iter().any(|(r, _)| r.method == "PUT" && r.target.contains("/blobs/uploads/")), "no upload");
    assert!(fs::read(&archive).unwrap() == b"an archive the user keeps", "the archive was replaced");
    assert_eq!(snapshot(&layout), layout_before, "the layout changed");
    assert_eq!(ref_names(&layout), ["v1"]);
    assert!(!d.join("new-layout").exists(), "a layout was created");
    assert_no_temporary_files(d);

    // With a registry that accepts it, the same build replaces both.
    let good = registry.image("accepted/app:1");
    let good = good.as_str();
    let out = build(d, &["hello", "-o", "out.tar", "--push", good]).assert_success("a push that succeeds").clone();
    assert_ne!(fs::read(&archive).unwrap(), b"an archive the user keeps");
    build(d, &["hello", "-o", "oci:layout:v2", "--push", good]).assert_success("a push that succeeds");
    assert_eq!(ref_names(&layout), ["v1", "v2"]);
    let digest = out.stdout_text().trim().rsplit_once('@').map(|(_, d)| d.to_string()).unwrap();
    let inspected = exec_ok(skopeo().args(["inspect", "--raw"]).arg(format!("oci:{}:v2", s(&layout))));
    assert_eq!(zeroimage_tests::sha256_digest(&inspected.stdout), digest);
}

/// A base layout (tag `latest`) whose layer blob was changed after its digest was taken,
/// keeping its size: found out only when the layer is copied and checked.
fn tampered_base(dir: &Path) -> PathBuf {
    let (_, base) = handmade_base(dir);
    let index: Value = serde_json::from_slice(&fs::read(base.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(base.join("blobs/sha256").join(manifest_digest)).unwrap()).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let layer = base.join("blobs/sha256").join(layer_digest);
    let mut bytes = fs::read(&layer).unwrap();
    let last = bytes.len() - 9; // inside the gzip trailer's CRC: the size stays, the digest changes
    bytes[last] ^= 0xff;
    fs::write(&layer, bytes).unwrap();
    base
}

#[test]
fn a_failed_layout_write_leaves_the_directory_as_it_was() {
    let dir = scratch_dir();
    let d = dir.path();
    static_hello(d);
    let from = format!("oci:{}:latest", s(&tampered_base(d)));

    // An existing layout with an image in it, and a directory that does not exist yet.
    exec_ok(zeroimage_in(d).args(["build", "hello", "-o", "oci:layout:v1"]));
    let before = snapshot(&d.join("layout"));
    for output in ["oci:layout:v2", "oci:new-layout:v1", "oci:new-parent/new-layout"] {
        fs::create_dir_all(d.join("new-parent")).unwrap();
        let out = build(d, &["hello", "--from", &from, "-o", output]);
        out.assert_failure(&format!("-o {output} from a tampered base"));
        assert!(out.stderr_text().contains("digest"), "{}", out.stderr_text());
    }
    assert_eq!(snapshot(&d.join("layout")), before, "the layout changed");
    assert!(!d.join("new-layout").exists(), "a new layout was left behind: {:?}", snapshot(&d.join("new-layout")));
    assert_eq!(fs::read_dir(d.join("new-parent")).unwrap().count(), 0, "{:?}", snapshot(&d.join("new-parent")));
    assert_no_temporary_files(d);
}

/// Start `zeroimage build hello ARGS…` in `dir` without waiting.
fn start_build(dir: &Path, epoch: usize, args: &[&str]) -> std::process::Child {
    let mut cmd = zeroimage_in(dir);
    // Different timestamps: different config blobs, one image per tag.
    cmd.env("SOURCE_DATE_EPOCH", (1000 + epoch).to_string())
        .args(["build", "hello", "-q"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    spawn(&mut cmd)
}

#[test]
fn concurrent_builds_into_one_layout_keep_every_tag() {
    let dir = scratch_dir();
    let d = dir.path();
    static_hello(d);
    let tags: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    for round in 0..4 {
        let layout = d.join(format!("layout-{round}"));
        let children: Vec<_> = tags
            .iter()
            .enumerate()
            .map(|(i, tag)| start_build(d, i, &["-o", &format!("oci:{}:{tag}", s(&layout))]))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(ref_names(&layout), tags, "round {round}: tags lost");
        // Every tag names a complete image that skopeo reads.
        for tag in ["t0", "t5"] {
            exec_ok(skopeo().args(["inspect", "--config"]).arg(format!("oci:{}:{tag}", s(&layout))));
        }
        assert_no_temporary_files(&layout);
    }

    // Into a new directory, with every other build failing (and removing what it added,
    // the directory too when it made it) while the others wait for the lock.
    let from = format!("oci:{}:latest", s(&tampered_base(d)));
    for round in 0..3 {
        let layout = d.join(format!("mixed-{round}"));
        let children: Vec<_> = tags
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                let output = format!("oci:{}:{tag}", s(&layout));
                if i % 2 == 0 {
                    (true, start_build(d, i, &["-o", &output]))
                } else {
                    (false, start_build(d, i, &["--from", &from, "-o", &output]))
                }
            })
            .collect();
        for (good, child) in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.success(), good, "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(ref_names(&layout), ["t0", "t2", "t4"], "mixed round {round}");
        for tag in ["t0", "t2", "t4"] {
            exec_ok(skopeo().args(["inspect", "--config"]).arg(format!("oci:{}:{tag}", s(&layout))));
        }
        assert_no_temporary_files(&layout);
    }
}
