//! Issue 3 end to end: FROM scratch images checked by tools zeroimage did not write.

use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zeroimage_tests::{
    exec, oci_archive_to_layout, oci_image_tool_validate, program, runc_run, scratch_dir, sha256_file, skopeo_inspect,
    skopeo_inspect_config, static_hello, zeroimage_cmd, DockerDaemon, ElfMachine, ImageLayout, OutputExt, Podman,
    HELLO_LINE,
};

fn build(args: &[&str], cwd: &Path) -> Output {
    exec(zeroimage_cmd().current_dir(cwd).env_remove("SOURCE_DATE_EPOCH").arg("build").args(args))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

#[test]
fn scratch_image_runs_under_runc_and_docker_and_validates() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let out = build(&["hello", "--tag", "registry.example.com/hello:1.0", "--json"], dir.path());
    out.assert_success("zeroimage build");
    let result: serde_json::Value = serde_json::from_str(out.stdout_text().trim()).unwrap();
    let archive = dir.path().join("hello.tar");
    assert_eq!(result["output"], json!("oci-archive:hello.tar"));
    assert_eq!(result["platform"], json!("linux/amd64"));

    // Independent reading: every blob hashes to its name; diff_ids recomputed from the layer.
    let layout = ImageLayout::open(&archive);
    assert!(layout.problems.is_empty(), "{:?}", layout.problems);
    let image = layout.image();
    assert_eq!(json!(image.digest), result["digest"]);
    assert_eq!(json!(image.config_digest), result["config_digest"]);
    assert_eq!(image.diff_ids(), image.config_diff_ids());
    assert_eq!(image.config["config"]["Entrypoint"], json!(["/hello"]));
    assert!(image.config["config"].get("Cmd").is_none());
    assert_eq!(image.config["created"], json!("1970-01-01T00:00:00Z"));
    assert!(image.config["history"][0]["created_by"].as_str().unwrap().starts_with("zeroimage "));
    assert_eq!(layout.oci_layout, Some(json!({"imageLayoutVersion": "1.0.0"})));
    let layer = &image.layers[0];
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    let gzip = layer.gzip.as_ref().expect("gzip layer");
    assert_eq!((gzip.mtime, gzip.filename.is_none()), (0, true));
    let entry = layer.entry("hello").expect("the program at /hello");
    assert_eq!((entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime), (0o755, 0, 0, 0));
    assert_eq!(entry.digest.as_deref(), Some(sha256_file(&hello).as_str()));
    assert!(layer.has_end_of_archive);
    // Docker's manifest.json and the containerd / OCI names.
    let docker_manifest = layout.docker_manifest.as_ref().expect("manifest.json");
    assert_eq!(docker_manifest[0]["RepoTags"], json!(["registry.example.com/hello:1.0"]));
    assert_eq!(image.ref_annotation("io.containerd.image.name"), Some("registry.example.com/hello:1.0"));
    assert_eq!(image.ref_annotation("org.opencontainers.image.ref.name"), Some("1.0"));

    // skopeo reads the archive as it is.
    let inspect = skopeo_inspect(&format!("oci-archive:{}", archive.display()));
    assert_eq!(inspect["Digest"], result["digest"]);
    assert_eq!(inspect["Architecture"], json!("amd64"));
    let config = skopeo_inspect_config(&format!("oci-archive:{}", archive.display()));
    assert_eq!(config["config"]["Entrypoint"], json!(["/hello"]));

    // oci-image-tool validates it.
    oci_image_tool_validate(&archive).assert_success("oci-image-tool validate");

    // runc runs it (umoci unpack of the skopeo-made layout).
    let unpacked = dir.path().join("layout");
    oci_archive_to_layout(&archive, &unpacked, "latest");
    let out = runc_run(&unpacked, "latest", &[]);
    out.assert_success("runc run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));

    // Docker 20.10 loads it (manifest.json) and runs it.
    let docker = DockerDaemon::shared();
    let loaded = docker.load(&archive);
    assert!(loaded.contains("registry.example.com/hello:1.0"), "{loaded}");
    let out = docker.run("registry.example.com/hello:1.0", &[]);
    out.assert_success("docker run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
    let inspected = docker.inspect("registry.example.com/hello:1.0");
    assert_eq!(inspected["Id"], result["config_digest"]);

    // podman loads the OCI side of it and runs it.
    let podman = Podman::new();
    let loaded = podman.load(&archive);
    assert!(loaded.contains("Loaded image"), "{loaded}");
    let out = podman.run(&result["config_digest"].as_str().unwrap()[7..], &[]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
}

#[test]
fn config_options_reach_the_running_container() {
    let dir = scratch_dir();
    static_hello(dir.path());
    let out = build(
        &[
            "hello",
            "-o",
            "opts.tar",
            "--tag",
            "opts:1",
            "--env",
            "GREETING=hi there",
            "--workdir",
            "/",
            "--user",
            "65532",
            "--label",
            "a=b",
            "--annotation",
            "org.opencontainers.image.source=https://example.com/x",
            "--path",
            "/app/bin/hello",
            "--",
            "--env",
            "GREETING",
        ],
        dir.path(),
    );
    out.assert_success("zeroimage build with options");
    let layout = ImageLayout::open(&dir.path().join("opts.tar"));
    let image = layout.image();
    let config = &image.config["config"];
    assert_eq!(config["Entrypoint"], json!(["/app/bin/hello"]));
    assert_eq!(config["Cmd"], json!(["--env", "GREETING"]));
    assert_eq!(config["Env"], json!(["GREETING=hi there"]));
    assert_eq!(config["User"], json!("65532"));
    assert_eq!(config["WorkingDir"], json!("/"));
    assert_eq!(config["Labels"], json!({"a": "b"}));
    assert_eq!(image.manifest["annotations"]["org.opencontainers.image.source"], json!("https://example.com/x"));
    let paths = image.layers[0].paths();
    assert_eq!(paths, vec!["app", "app/bin", "app/bin/hello"], "parents first");

    let docker = DockerDaemon::shared();
    docker.load(&dir.path().join("opts.tar"));
    let out = docker.run("opts:1", &[]);
    out.assert_success("docker run");
    assert!(out.stdout_text().contains("hi there"), "{}", out.stdout_text());
    let out = docker.run("opts:1", &["--uid"]);
    assert!(out.stdout_text().contains("65532"), "{}", out.stdout_text());
}

#[test]
fn oci_layout_output_is_read_by_umoci_and_skopeo() {
    let dir = scratch_dir();
    static_hello(dir.path());
    build(&["hello", "--output", "oci:./layout-dir:v1"], dir.path()).assert_success("build to oci:");
    let layout_dir = dir.path().join("layout-dir");
    let layout = ImageLayout::read_dir(&layout_dir).unwrap();
    assert_eq!(layout.image().ref_annotation("org.opencontainers.image.ref.name"), Some("v1"));
    let out = runc_run(&layout_dir, "v1", &["/hello", "one"]);
    out.assert_success("runc run from the layout dir");
    assert!(out.stdout_text().contains("arg=one"), "{}", out.stdout_text());
    let inspect = skopeo_inspect(&format!("oci:{}:v1", layout_dir.display()));
    assert_eq!(json!(inspect["Digest"]), json!(layout.image().digest));

    // A second build into the same layout with another tag keeps the first.
    build(&["hello", "--output", "oci:./layout-dir:v2", "--env", "X=1"], dir.path()).assert_success("second build");
    let layout = ImageLayout::read_dir(&layout_dir).unwrap();
    assert_eq!(layout.index["manifests"].as_array().unwrap().len(), 2);
    runc_run(&layout_dir, "v1", &[]).assert_success("v1 still runs");
}

#[test]
fn rebuilds_are_byte_identical_in_another_directory_and_time() {
    let a = scratch_dir();
    let b = scratch_dir();
    let hello_a = static_hello(a.path());
    let hello_b = b.path().join("hello");
    fs::copy(&hello_a, &hello_b).unwrap();
    // Another mtime and mode on the copy: neither may leak into the image.
    program::set_mode(&hello_b, 0o700);
    let touch = Command::new("touch").args(["-d", "2001-02-03 04:05:06"]).arg(&hello_b).status().unwrap();
    assert!(touch.success());
    build(&["hello", "-o", "x.tar"], a.path()).assert_success("build a");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build(&["hello", "-o", "x.tar"], b.path()).assert_success("build b");
    let (xa, xb) = (fs::read(a.path().join("x.tar")).unwrap(), fs::read(b.path().join("x.tar")).unwrap());
    assert!(xa == xb, "archives differ");

    // SOURCE_DATE_EPOCH moves every timestamp, and only that.
    let out = exec(
        zeroimage_cmd()
            .current_dir(a.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "hello", "-o", "y.tar", "--json"]),
    );
    out.assert_success("build with SOURCE_DATE_EPOCH");
    let layout = ImageLayout::open(&a.path().join("y.tar"));
    assert_eq!(layout.image().config["created"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(layout.image().layers[0].entry("hello").unwrap().mtime, 1_700_000_000);
    assert_ne!(sha256_file(&a.path().join("y.tar")), sha256_file(&a.path().join("x.tar")));
}

/// A bad input: exit code 1, one error naming the thing, nothing written, nothing clobbered.
fn assert_rejected(dir: &Path, args: &[&str], needles: &[&str]) {
    let good = dir.join("existing.tar");
    fs::write(&good, b"a good archive").unwrap();
    let before = files_in(dir);
    let mut full = vec![args[0], "-o", "existing.tar"];
    full.extend_from_slice(&args[1..]);
    let out = build(&full, dir);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", out.stderr_text());
    let stderr = out.stderr_text();
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: missing {needle:?} in {stderr}");
    }
    assert!(out.stdout_text().is_empty(), "{args:?}: {}", out.stdout_text());
    assert_eq!(files_in(dir), before, "{args:?} left files behind");
    assert_eq!(fs::read(&good).unwrap(), b"a good archive", "{args:?} clobbered the output");
}

#[test]
fn bad_inputs_get_one_clear_error_and_write_nothing() {
    let dir = scratch_dir();
    let d = dir.path();
    static_hello(d);
    program::dynamic_hello(d);
    program::shell_script(d);
    program::tiny_elf(&d.join("arm-prog"), ElfMachine::Aarch64);
    fs::create_dir(d.join("a-dir")).unwrap();
    fs::write(d.join("notes.txt"), "not a program").unwrap();
    let script = program::shell_script(d).file_name().unwrap().to_string_lossy().into_owned();

    assert_rejected(d, &["missing-prog"], &["missing-prog", "not found"]);
    assert_rejected(d, &["a-dir"], &["a-dir", "directory"]);
    assert_rejected(d, &["hello-dynamic"], &["dynamically linked", "CGO_ENABLED=0", "--allow-dynamic"]);
    assert_rejected(d, &[&script], &["script"]);
    assert_rejected(d, &["notes.txt"], &["not an ELF executable"]);
    assert_rejected(d, &["arm-prog", "--platform", "linux/amd64"], &["arm-prog", "arm64", "linux/amd64"]);
    assert_rejected(d, &["hello", "--platform", "linux/arm64"], &["amd64", "linux/arm64"]);
    assert_rejected(d, &["hello", "--platform", "linux/sparc"], &["sparc", "os/arch"]);
    assert_rejected(d, &["hello", "--platform", "darwin/amd64"], &["darwin"]);
    assert_rejected(d, &["hello", "--tag", "Bad:Name:"], &["Bad:Name:"]);
    assert_rejected(d, &["hello", "--env", "NOEQUALS"], &["NOEQUALS", "KEY=VALUE"]);
    assert_rejected(d, &["hello", "--path", "relative/x"], &["relative/x", "absolute"]);
    assert_rejected(d, &["hello", "--from", "nonsense:Bad!"], &["nonsense:Bad!"]);

    // A bad output transport or a missing output directory: nothing written either.
    let before = files_in(d);
    let out = build(&["hello", "-o", "dir:somewhere"], d);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("dir"), "{}", out.stderr_text());
    let out = build(&["hello", "-o", "no/such/dir/x.tar"], d);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("no/such/dir"), "{}", out.stderr_text());
    assert_eq!(files_in(d), before);

    // Usage errors exit 2.
    assert_eq!(build(&[], d).status.code(), Some(2));

    // --allow-dynamic builds anyway.
    build(&["hello-dynamic", "-o", "dyn.tar", "--allow-dynamic"], d).assert_success("--allow-dynamic");
}

#[test]
fn interrupted_build_leaves_nothing_and_keeps_the_old_archive() {
    let dir = scratch_dir();
    let d = dir.path();
    // A big, slow-to-compress program: an ELF header followed by 512 MiB of pseudo-random bytes.
    let big = d.join("big");
    program::tiny_elf(&big, ElfMachine::X86_64);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("head -c 536870912 /dev/urandom >> {}", big.display()))
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(d.join("big.tar"), b"the previous good archive").unwrap();
    let child = zeroimage_cmd()
        .current_dir(d)
        .args(["build", "big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    zeroimage_tests::process::signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "the build was interrupted (128 + SIGINT): {}", out.stderr_text());
    assert!(out.stderr_text().contains("cancelled"), "{}", out.stderr_text());
    assert_eq!(fs::read(d.join("big.tar")).unwrap(), b"the previous good archive");
    assert_eq!(files_in(d), vec!["big", "big.tar"], "no temporary files left");
}

#[test]
fn default_platform_comes_from_the_program() {
    let dir = scratch_dir();
    let arm = program::static_hello_arm64(dir.path());
    let out = build(&[arm.file_name().unwrap().to_str().unwrap(), "-o", "arm.tar", "--json"], dir.path());
    out.assert_success("build an arm64 program on an amd64 host");
    let result: serde_json::Value = serde_json::from_str(out.stdout_text().trim()).unwrap();
    assert_eq!(result["platform"], json!("linux/arm64"));
    let inspect = skopeo_inspect(&format!("oci-archive:{}", dir.path().join("arm.tar").display()));
    assert_eq!(inspect["Architecture"], json!("arm64"));
    // --arch with the ELF's own spelling is normalised and accepted.
    build(&["hello-arm64", "-o", "arm2.tar", "--arch", "aarch64"], dir.path()).assert_success("--arch aarch64");
    let _: PathBuf = arm;
}

#[test]
fn docker_daemon_output_loads_straight_into_the_engine() {
    let dir = scratch_dir();
    static_hello(dir.path());
    let docker = DockerDaemon::shared();
    let out = exec(zeroimage_cmd().current_dir(dir.path()).env("DOCKER_HOST", docker.host()).args([
        "build",
        "hello",
        "--output",
        "docker-daemon:prog:dev",
        "--json",
    ]));
    out.assert_success("build into docker-daemon:");
    let result: serde_json::Value = serde_json::from_str(out.stdout_text().trim()).unwrap();
    assert_eq!(result["output"], json!("docker-daemon:prog:dev"));
    assert_eq!(docker.inspect("prog:dev")["Id"], result["config_digest"]);
    let run = docker.run("prog:dev", &[]);
    run.assert_success("docker run prog:dev");
    assert_eq!(run.stdout_text(), format!("{HELLO_LINE}\n"));
    assert_eq!(files_in(dir.path()), vec!["hello"], "nothing written to disk");

    // No engine there: a clear error before any work.
    let out = exec(
        zeroimage_cmd()
            .current_dir(dir.path())
            .env("DOCKER_HOST", format!("unix://{}/nope.sock", dir.path().display()))
            .args(["build", "hello", "--output", "docker-daemon:prog:dev"]),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr_text().contains("cannot reach the Docker engine"), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("DOCKER_HOST"), "{}", out.stderr_text());
}
