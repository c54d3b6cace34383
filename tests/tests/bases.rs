//! Building on existing images: bases made by umoci, skopeo and `docker save`, served from OCI
//! layouts, OCI archives, docker archives and a real registry (anonymous, htpasswd Basic, and
//! Bearer tokens from an issuer the registry trusts, and TLS with --ca-cert); multi-platform
//! bases; tampered and hostile bases. Every output is checked by tools we did not write.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zeroimage_tests::oci::{self, skopeo_copy, skopeo_inspect_with, umoci_image};
use zeroimage_tests::program::{tiny_elf, ElfMachine};
use zeroimage_tests::token::{TokenRegistry, SERVICE};
use zeroimage_tests::{
    dynamic_hello, exec, exec_ok, handmade, oci_archive_to_layout, runc_run, scratch_dir, sha256_digest, static_hello,
    static_hello_arm64, zeroimage, DockerDaemon, ImageLayout, OutputExt, Registry, RegistryOptions,
};

const PASSWD: &str = "root:x:0:0:from-the-base:/root:/bin/sh\nzi:x:1000:1000::/home/zi:/bin/sh\n";

/// An OCI layout made by umoci with image `base`: `/etc/passwd` and a config using every
/// field a base may set.
fn umoci_base(dir: &Path) -> PathBuf {
    let passwd = dir.join("passwd");
    fs::write(&passwd, PASSWD).unwrap();
    let layout = dir.join("base-layout");
    umoci_image(
        &layout,
        "base",
        &[(&passwd, "/etc/passwd")],
        &[
            "--config.env=BASEVAR=from-base",
            "--config.env=PATH=/usr/bin:/bin",
            "--config.user=1000",
            "--config.workingdir=/srv",
            "--config.label=org.example.base=yes",
            "--config.exposedports=8080/tcp",
            "--config.volume=/data",
            "--config.stopsignal=SIGINT",
            "--config.cmd=/bin/sh",
        ],
    );
    layout
}

fn build(args: &[&str]) -> Output {
    zeroimage(args)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The image of an OCI archive or layout, read independently.
fn image_of(path: &Path) -> zeroimage_tests::Image {
    ImageLayout::open(path).image().clone()
}

/// Runs the image in `archive` with runc: `/hello ARGS…`.
fn runc(archive: &Path, args: &[&str]) -> Output {
    let work = scratch_dir();
    let layout = work.path().join("layout");
    oci_archive_to_layout(archive, &layout, "latest");
    let mut argv = vec!["/hello"];
    argv.extend_from_slice(args);
    runc_run(&layout, "latest", &argv)
}

fn layer_digests(image: &zeroimage_tests::Image) -> Vec<String> {
    image.layers.iter().map(|l| l.digest.clone()).collect()
}

/// Digests of the layers of the base's manifest (as skopeo sees them).
fn base_layer_digests(flags: &[String], reference: &str) -> Vec<String> {
    let raw = skopeo_inspect_with(&[flags, &["--raw".to_string()]].concat(), reference);
    raw["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
}

fn assert_inherited_config(config: &Value) {
    let run = &config["config"];
    let env: Vec<&str> = run["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"BASEVAR=from-base"), "{env:?}");
    assert!(env.contains(&"PATH=/usr/bin:/bin"), "{env:?}");
    assert_eq!(run["User"], "1000");
    assert_eq!(run["WorkingDir"], "/srv");
    assert_eq!(run["Labels"]["org.example.base"], "yes");
    assert!(run["ExposedPorts"]["8080/tcp"].is_object(), "{run}");
    assert!(run["Volumes"]["/data"].is_object(), "{run}");
    assert_eq!(run["StopSignal"], "SIGINT");
    assert_eq!(run["Entrypoint"], json!(["/hello"]));
    assert!(run.get("Cmd").is_none_or(Value::is_null), "the base's Cmd is cleared: {run}");
}

#[test]
fn umoci_layout_base_runs_keeps_config_and_passes_layers_through() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    let out = dir.path().join("out.tar");
    build(&["build", &s(&hello), "--from", &format!("oci:{}:base", layout.display()), "-o", &s(&out), "-e", "MINE=1"])
        .assert_success("build on an umoci layout");

    let image = image_of(&out);
    let base = ImageLayout::read_dir(&layout).unwrap();
    let base_image =
        base.images.iter().find(|i| i.ref_annotation("org.opencontainers.image.ref.name") == Some("base")).unwrap();
    assert_eq!(layer_digests(&image)[..1], layer_digests(base_image)[..], "base layer passes through unchanged");
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.manifest["annotations"]["org.opencontainers.image.base.digest"], base_image.digest.as_str());
    assert_eq!(image.diff_ids(), image.config_diff_ids());
    assert_inherited_config(&image.config);
    assert!(image.config["config"]["Env"].as_array().unwrap().contains(&json!("MINE=1")));
    assert_eq!(
        image.config["history"].as_array().unwrap().len(),
        base_image.config["history"].as_array().unwrap().len() + 1
    );

    // skopeo agrees on the config; runc runs it and sees the base's files.
    let config = skopeo_inspect_with::<&str>(&["--config"], &format!("oci-archive:{}", out.display()));
    assert_eq!(config["config"]["User"], "1000");
    let run = runc(&out, &["--cat", "/etc/passwd", "--cwd"]);
    run.assert_success("runc run");
    let text = run.stdout_text();
    assert!(text.contains("from-the-base"), "{text}");
    assert!(text.contains("/srv"), "the base's WorkingDir: {text}");
}

#[test]
fn skopeo_oci_archive_base_and_from_archive() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    let archive = dir.path().join("base.tar");
    skopeo_copy::<&str>(&[], &format!("oci:{}:base", layout.display()), &format!("oci-archive:{}", archive.display()));
    let base_layers = layer_digests(&image_of(&archive));

    for from in [
        vec!["--from".to_string(), format!("oci-archive:{}", archive.display())],
        vec!["--from-archive".to_string(), s(&archive)],
    ] {
        let out = dir.path().join("out.tar");
        let mut args = vec!["build".to_string(), s(&hello), "-o".into(), s(&out)];
        args.extend(from);
        build(&args.iter().map(String::as_str).collect::<Vec<_>>()).assert_success("build on a skopeo oci-archive");
        let image = image_of(&out);
        assert_eq!(layer_digests(&image)[..base_layers.len()], base_layers[..]);
        assert_inherited_config(&image.config);
        let run = runc(&out, &["--cat", "/etc/passwd"]);
        assert!(run.assert_success("runc").stdout_text().contains("from-the-base"));
    }
}

#[test]
fn docker_archives_from_skopeo_and_docker_save() {
    let docker = DockerDaemon::shared();
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    let saved = dir.path().join("skopeo-docker.tar");
    skopeo_copy::<&str>(
        &[],
        &format!("oci:{}:base", layout.display()),
        &format!("docker-archive:{}:zi-bases/base:1", saved.display()),
    );

    // skopeo's docker-archive → an OCI archive (converted media types, as skopeo does) that
    // Docker runs, with the base's config.
    let out = dir.path().join("from-skopeo.tar");
    build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "-o",
        &s(&out),
        "-t",
        "zi-bases/on-skopeo:1",
    ])
    .assert_success("build on skopeo's docker-archive");
    let image = image_of(&out);
    assert_eq!(image.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(image.manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    for layer in &image.layers {
        assert!(layer.media_type.starts_with("application/vnd.oci."), "never mixed: {}", layer.media_type);
    }
    assert_eq!(image.manifest["annotations"]["org.opencontainers.image.base.name"], "docker.io/zi-bases/base:1");
    docker.load(&out);
    let run = docker.run("zi-bases/on-skopeo:1", &["--cat", "/etc/passwd"]);
    assert!(run.assert_success("docker run").stdout_text().contains("from-the-base"));
    let inspect = docker.inspect("zi-bases/on-skopeo:1");
    assert_eq!(inspect["Config"]["User"], "1000");
    assert_eq!(inspect["Config"]["WorkingDir"], "/srv");
    assert!(inspect["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{inspect}");
    assert_eq!(inspect["Config"]["Labels"]["org.example.base"], "yes");

    // `docker save` of an image with Docker-only config (Healthcheck, OnBuild) made by Docker.
    docker.load(&saved);
    let container = exec_ok(docker.docker().args(["create", "zi-bases/base:1"])).stdout_text().trim().to_string();
    exec_ok(docker.docker().args([
        "commit",
        "--change",
        "HEALTHCHECK --interval=7s CMD [\"/hello\"]",
        "--change",
        "ONBUILD RUN true",
        &container,
        "zi-bases/committed:1",
    ]));
    let _ = exec(docker.docker().args(["rm", &container]));
    let save = dir.path().join("docker-save.tar");
    exec_ok(docker.docker().args(["save", "-o", &s(&save), "zi-bases/committed:1"]));
    let out2 = dir.path().join("from-docker-save.tar");
    build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}:zi-bases/committed:1", save.display()),
        "-o",
        &s(&out2),
        "-t",
        "zi-bases/on-save:1",
    ])
    .assert_success("build on docker save output");
    let image = image_of(&out2);
    assert_eq!(image.config["config"]["Healthcheck"]["Interval"], 7_000_000_000u64, "{}", image.config);
    assert_eq!(image.config["config"]["OnBuild"], json!(["RUN true"]));
    docker.load(&out2);
    let inspect = docker.inspect("zi-bases/on-save:1");
    assert_eq!(inspect["Config"]["Healthcheck"]["Test"], json!(["CMD", "/hello"]));
    assert_eq!(inspect["Config"]["Entrypoint"], json!(["/hello"]));
    let run = docker.run("zi-bases/on-save:1", &["--cat", "/etc/passwd"]);
    assert!(run.assert_success("docker run").stdout_text().contains("from-the-base"));

    // Asking for OCI media types converts gzip/tar types only (same bytes).
    let out3 = dir.path().join("as-oci.tar");
    build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "--format",
        "oci",
        "-o",
        &s(&out3),
    ])
    .assert_success("--format oci");
    let image = image_of(&out3);
    assert_eq!(image.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(image.layers.iter().all(|l| l.media_type.starts_with("application/vnd.oci.")));
    let run = runc(&out3, &["--cat", "/etc/passwd"]);
    assert!(run.assert_success("runc").stdout_text().contains("from-the-base"));
}

#[test]
fn anonymous_registry_base() {
    let registry = Registry::start();
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    skopeo_copy(
        &registry.dest_flags(),
        &format!("oci:{}:base", layout.display()),
        &registry.docker_ref("team/base:1.2"),
    );
    let out = dir.path().join("out.tar");
    build(&["build", &s(&hello), "--from", &registry.image("team/base:1.2"), "-o", &s(&out)])
        .assert_success("registry base");
    let image = image_of(&out);
    let base_layers = base_layer_digests(&registry.flags(), &registry.docker_ref("team/base:1.2"));
    assert_eq!(layer_digests(&image)[..base_layers.len()], base_layers[..]);
    let digest = skopeo_inspect_with(&registry.flags(), &registry.docker_ref("team/base:1.2"))["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        image.manifest["annotations"]["org.opencontainers.image.base.name"],
        registry.image("team/base:1.2").as_str()
    );
    assert_eq!(image.manifest["annotations"]["org.opencontainers.image.base.digest"], digest.as_str());
    assert_inherited_config(&image.config);
    assert!(runc(&out, &["--cat", "/etc/passwd"]).assert_success("runc").stdout_text().contains("from-the-base"));

    // By digest, and with docker://.
    let out2 = dir.path().join("by-digest.tar");
    build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("docker://{}@{digest}", registry.image("team/base")),
        "-o",
        &s(&out2),
    ])
    .assert_success("registry base by digest");
    let by_digest = image_of(&out2);
    assert_eq!(by_digest.config_digest, image.config_digest, "same base, same config");
    assert_eq!(layer_digests(&by_digest), layer_digests(&image));
    assert_eq!(
        by_digest.manifest["annotations"]["org.opencontainers.image.base.name"],
        format!("{}@{digest}", registry.image("team/base")).as_str()
    );

    // A missing tag: not found, nothing written.
    let out3 = dir.path().join("missing.tar");
    let failed = build(&["build", &s(&hello), "--from", &registry.image("team/base:nope"), "-o", &s(&out3)]);
    failed.assert_failure("missing tag");
    assert!(failed.stderr_text().contains("not found"), "{}", failed.stderr_text());
    assert!(!out3.exists());
}

#[test]
fn basic_auth_and_tls_registry_bases() {
    let registry = RegistryOptions::default().auth("alice", "s3cret-pw").tls().start();
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    skopeo_copy(&registry.dest_flags(), &format!("oci:{}:base", layout.display()), &registry.docker_ref("base:1"));
    let ca = s(registry.ca_cert().unwrap());
    let from = registry.image("base:1");
    let out = dir.path().join("out.tar");

    // Without trusting the CA: a TLS failure.
    let failed = build(&["build", &s(&hello), "--from", &from, "--creds", "alice:s3cret-pw", "-o", &s(&out)]);
    failed.assert_failure("unknown CA");
    assert!(failed.stderr_text().contains("cannot reach"), "{}", failed.stderr_text());
    // Anonymous: refused, with the registry's message.
    let failed = build(&["build", &s(&hello), "--from", &from, "--ca-cert", &ca, "-o", &s(&out)]);
    failed.assert_failure("anonymous on a Basic registry");
    assert!(failed.stderr_text().contains("refused access"), "{}", failed.stderr_text());
    // A wrong password: refused, and never echoed.
    let failed = build(&[
        "build",
        &s(&hello),
        "--from",
        &from,
        "--ca-cert",
        &ca,
        "--creds",
        "alice:wrong-pw-xyz",
        "-o",
        &s(&out),
    ]);
    failed.assert_failure("wrong password");
    assert!(failed.stderr_text().contains("refused access"), "{}", failed.stderr_text());
    assert!(!failed.stderr_text().contains("wrong-pw-xyz"), "{}", failed.stderr_text());
    assert!(!out.exists());
    // Right credentials.
    build(&["build", &s(&hello), "--from", &from, "--ca-cert", &ca, "--creds", "alice:s3cret-pw", "-o", &s(&out)])
        .assert_success("Basic auth over TLS");
    let base_layers = base_layer_digests(&registry.flags(), &registry.docker_ref("base:1"));
    assert_eq!(layer_digests(&image_of(&out))[..base_layers.len()], base_layers[..]);
    assert!(runc(&out, &["--cat", "/etc/passwd"]).assert_success("runc").stdout_text().contains("from-the-base"));
}

#[test]
fn bearer_token_registry_base() {
    let registry = TokenRegistry::start("bob", "t0ken-pw");
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let layout = umoci_base(dir.path());
    skopeo_copy(
        &["--dest-tls-verify=false", "--dest-creds=bob:t0ken-pw"],
        &format!("oci:{}:base", layout.display()),
        &format!("docker://{}/team/base:1", registry.addr()),
    );
    let from = format!("{}/team/base:1", registry.addr());
    let out = dir.path().join("out.tar");

    let before = registry.token_requests().len();
    let failed = build(&["build", &s(&hello), "--from", &from, "-o", &s(&out)]);
    failed.assert_failure("anonymous token has no access");
    assert!(failed.stderr_text().contains("refused access"), "{}", failed.stderr_text());
    assert!(registry.token_requests().len() > before, "an anonymous token was asked for");

    let failed = build(&["build", &s(&hello), "--from", &from, "--creds", "bob:nope-pw-123", "-o", &s(&out)]);
    failed.assert_failure("wrong password at the token server");
    assert!(!failed.stderr_text().contains("nope-pw-123"), "{}", failed.stderr_text());

    let before = registry.token_requests().len();
    build(&["build", &s(&hello), "--from", &from, "--creds", "bob:t0ken-pw", "-o", &s(&out)])
        .assert_success("Bearer auth");
    let requests = registry.token_requests()[before..].to_vec();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.scope.as_deref(), Some("repository:team/base:pull"), "{requests:?}");
        assert_eq!(request.service.as_deref(), Some(SERVICE));
        assert_eq!(request.user.as_deref(), Some("bob"));
    }
    assert_eq!(requests.len(), 1, "one token per scope, cached: {requests:?}");
    let base_layers =
        base_layer_digests(&["--tls-verify=false".into(), "--creds=bob:t0ken-pw".into()], &format!("docker://{from}"));
    assert_eq!(layer_digests(&image_of(&out))[..base_layers.len()], base_layers[..]);
    assert!(runc(&out, &["--cat", "/etc/passwd"]).assert_success("runc").stdout_text().contains("from-the-base"));
}

/// A layout with images `amd64` and `arm64` (umoci) and `multi`: a hand-made index of both.
fn multi_platform_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("multi-layout");
    for arch in ["amd64", "arm64"] {
        let marker = dir.join(format!("arch-{arch}"));
        fs::write(&marker, format!("base for {arch}\n")).unwrap();
        umoci_image(&layout, arch, &[(&marker, "/etc/base-arch")], &[&format!("--architecture={arch}"), "--os=linux"]);
    }
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let manifests: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let arch = d["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap();
            let mut platform = json!({"os": "linux", "architecture": arch});
            if arch == "arm64" {
                platform["variant"] = json!("v8");
            }
            json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": platform})
        })
        .chain([json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "0".repeat(64)), "size": 1,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        })])
        .collect();
    // Without the fake attestation entry for the copy to the registry (its blob does not exist).
    let real: Vec<Value> = manifests[..2].to_vec();
    for (name, list) in [("multi", real), ("multi-att", manifests)] {
        let bytes = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list}),
        )
        .unwrap();
        let digest = sha256_digest(&bytes);
        fs::write(layout.join("blobs/sha256").join(&digest[7..]), &bytes).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    }
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    layout
}

#[test]
fn multi_platform_bases_pick_the_programs_platform() {
    let registry = Registry::start();
    let dir = scratch_dir();
    let layout = multi_platform_layout(dir.path());
    skopeo_copy(
        &[&["--all".to_string()][..], &registry.dest_flags()].concat(),
        &format!("oci:{}:multi", layout.display()),
        &registry.docker_ref("multi:1"),
    );
    let arm = static_hello_arm64(dir.path());
    let amd = static_hello(dir.path());
    let arm_base = ImageLayout::read_dir(&layout).unwrap();
    let arm_layers = layer_digests(
        arm_base
            .images
            .iter()
            .find(|i| i.ref_annotation("org.opencontainers.image.ref.name") == Some("arm64"))
            .unwrap(),
    );

    for from in [
        registry.image("multi:1"),
        format!("oci:{}:multi", layout.display()),
        format!("oci:{}:multi-att", layout.display()),
    ] {
        let out = dir.path().join("arm.tar");
        build(&["build", &s(&arm), "--from", &from, "-o", &s(&out)])
            .assert_success("arm64 program on a multi-platform base");
        let image = image_of(&out);
        assert_eq!(image.platform(), "linux/arm64", "{from}");
        assert_eq!(layer_digests(&image)[..arm_layers.len()], arm_layers[..], "{from}");
        let config = skopeo_inspect_with::<&str>(&["--config"], &format!("oci-archive:{}", out.display()));
        assert_eq!(config["architecture"], "arm64");
    }
    // amd64 from the same index runs here and sees the amd64 base's file.
    let out = dir.path().join("amd.tar");
    build(&["build", &s(&amd), "--from", &registry.image("multi:1"), "-o", &s(&out)]).assert_success("amd64");
    let run = runc(&out, &["--cat", "/etc/base-arch"]);
    assert!(run.assert_success("runc").stdout_text().contains("base for amd64"));

    // A platform the index lacks: the error lists what it offers; nothing written.
    let s390x = tiny_elf(&dir.path().join("prog-s390x"), ElfMachine::S390x);
    let out = dir.path().join("s390x.tar");
    let failed = build(&["build", &s(&s390x), "--from", &registry.image("multi:1"), "-o", &s(&out)]);
    failed.assert_failure("no s390x");
    let err = failed.stderr_text();
    assert!(err.contains("linux/s390x") && err.contains("linux/amd64") && err.contains("linux/arm64"), "{err}");
    assert!(!out.exists());
    // A single-platform base for another architecture: an error, never a silent mix.
    let failed = build(&["build", &s(&arm), "--from", &format!("oci:{}:amd64", layout.display()), "-o", &s(&out)]);
    failed.assert_failure("arm64 program on an amd64 base");
    assert!(failed.stderr_text().contains("linux/amd64"), "{}", failed.stderr_text());
}

/// `DIR/glibc-layout`, tag `glibc`: an OCI layout (made by umoci) holding the host's glibc
/// loader and libc, enough to run a dynamically linked hello.
fn glibc_base(dir: &Path) -> PathBuf {
    let layout = dir.join("glibc-layout");
    let loader = fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    let libc = fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    umoci_image(
        &layout,
        "glibc",
        &[(&loader, "/lib64/ld-linux-x86-64.so.2"), (&libc, "/lib/x86_64-linux-gnu/libc.so.6")],
        &[],
    );
    layout
}

/// Nothing zeroimage writes under a temporary name (`.NAME.*.zeroimage-tmp`,
/// `.zeroimage-layer-*`, `.zeroimage-base-layer-*`) is left in `dir`.
fn assert_no_temporary_files(dir: &Path) {
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("zeroimage"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn dynamic_programs_need_their_interpreter_in_the_base() {
    let dir = scratch_dir();
    let dynamic = dynamic_hello(dir.path());
    let layout = glibc_base(dir.path());
    let out = dir.path().join("dyn.tar");
    build(&["build", &s(&dynamic), "--from", &format!("oci:{}:glibc", layout.display()), "-o", &s(&out)])
        .assert_success("dynamic program on a glibc base");
    let work = scratch_dir();
    let unpacked = work.path().join("layout");
    oci_archive_to_layout(&out, &unpacked, "latest");
    let run = runc_run(&unpacked, "latest", &[]);
    assert_eq!(run.assert_success("runc").stdout_text(), "hello from zeroimage\n");

    let plain = umoci_base(dir.path());
    let failed = build(&["build", &s(&dynamic), "--from", &format!("oci:{}:base", plain.display()), "-o", &s(&out)]);
    failed.assert_failure("dynamic program without its loader");
    assert!(failed.stderr_text().contains("dynamically linked"), "{}", failed.stderr_text());
}

#[test]
fn a_registry_base_is_downloaded_once_for_a_dynamic_program() {
    // The interpreter check reads every base layer; the outputs then copy the same bytes.
    // Each layer must cross the network once, and a push to the same registry still mounts.
    let registry = Registry::start();
    let dir = scratch_dir();
    let dynamic = dynamic_hello(dir.path());
    let layout = glibc_base(dir.path());
    skopeo_copy(&registry.dest_flags(), &format!("oci:{}:glibc", layout.display()), &registry.docker_ref("os/glibc:1"));
    let base_layers = base_layer_digests(&registry.flags(), &registry.docker_ref("os/glibc:1"));
    assert!(!base_layers.is_empty());

    let before = registry.requests().len();
    let out = dir.path().join("dyn.tar");
    build(&[
        "build",
        &s(&dynamic),
        "--from",
        &registry.image("os/glibc:1"),
        "-o",
        &s(&out),
        "--push",
        &registry.image("app/dyn:1"),
    ])
    .assert_success("dynamic program on a registry base, to an archive and a push");
    let requests = registry.requests();
    let build_requests = &requests[before..];
    for layer in &base_layers {
        let gets =
            build_requests.iter().filter(|r| r.method == "GET" && r.path().ends_with(&format!("/blobs/{layer}")));
        assert_eq!(gets.count(), 1, "base layer {layer} downloaded once: {build_requests:#?}");
        let mounted = build_requests.iter().any(|r| r.method == "POST" && r.uri.contains(&format!("mount={layer}")));
        assert!(mounted, "base layer {layer} mounted on push: {build_requests:#?}");
    }
    let image = image_of(&out);
    assert_eq!(layer_digests(&image)[..base_layers.len()], base_layers[..]);
    let unpacked = dir.path().join("unpacked");
    oci_archive_to_layout(&out, &unpacked, "latest");
    assert_eq!(runc_run(&unpacked, "latest", &[]).assert_success("runc").stdout_text(), "hello from zeroimage\n");
    // No temporary copies left next to the output.
    assert_no_temporary_files(dir.path());
}

/// A hand-made base (tar + JSON) with one layer holding /etc/passwd.
fn handmade_base() -> BTreeMap<String, Vec<u8>> {
    let layer = handmade::layer_tar(&[("etc/passwd", PASSWD.as_bytes(), 0o644)]);
    handmade::oci_layout_files(&[layer], json!({"architecture": "amd64", "os": "linux", "config": {}}), Some("latest"))
}

#[test]
fn tampered_bases_are_integrity_errors_and_nothing_is_written() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let mut files = handmade_base();
    let manifest_key = files.keys().find(|k| {
        k.starts_with("blobs/") && serde_json::from_slice::<Value>(&files[*k]).is_ok_and(|v| v["layers"].is_array())
    });
    let manifest: Value = serde_json::from_slice(&files[manifest_key.unwrap()]).unwrap();
    let layer_key = format!("blobs/sha256/{}", &manifest["layers"][0]["digest"].as_str().unwrap()[7..]);
    let blob = files.get_mut(&layer_key).unwrap();
    let last = blob.len() - 5;
    blob[last] ^= 0xff; // same size, other bytes (in the gzip trailer)

    let layout = dir.path().join("tampered-layout");
    handmade::write_dir(&layout, &files);
    let archive = dir.path().join("tampered.tar");
    handmade::write_tar(&archive, &files);
    for from in [format!("oci:{}:latest", layout.display()), format!("oci-archive:{}", archive.display())] {
        let out = dir.path().join("out.tar");
        let failed = build(&["build", &s(&hello), "--from", &from, "-o", &s(&out)]);
        failed.assert_failure("tampered base");
        assert!(failed.stderr_text().contains("does not match its digest"), "{from}: {}", failed.stderr_text());
        assert!(!out.exists(), "{from}: nothing written");
        assert_no_temporary_files(dir.path());
    }

    // A blob tampered with inside a real registry's storage: streamed, verified, refused.
    let registry = Registry::start();
    let good = dir.path().join("good-layout");
    handmade::write_dir(&good, &handmade_base());
    skopeo_copy(&registry.dest_flags(), &format!("oci:{}:latest", good.display()), &registry.docker_ref("tampered:1"));
    let digest = base_layer_digests(&registry.flags(), &registry.docker_ref("tampered:1"))[0].clone();
    let data =
        registry.storage_dir().join(format!("docker/registry/v2/blobs/sha256/{}/{}/data", &digest[7..9], &digest[7..]));
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    let out = dir.path().join("out.tar");
    let failed = build(&["build", &s(&hello), "--from", &registry.image("tampered:1"), "-o", &s(&out)]);
    failed.assert_failure("tampered registry blob");
    assert!(failed.stderr_text().contains("does not match its digest"), "{}", failed.stderr_text());
    assert!(!out.exists());
}

/// A raw tar entry whose name is written as is (the `tar` crate refuses `..` names).
fn raw_entry(name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_mtime(0);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn hostile_archives_are_rejected() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let files = handmade_base();
    let good = dir.path().join("good.tar");
    handmade::write_tar(&good, &files);
    build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("oci-archive:{}", good.display()),
        "-o",
        &s(&dir.path().join("ok.tar")),
    ])
    .assert_success("the untampered archive is fine");

    let some_blob = files.keys().find(|k| k.starts_with("blobs/")).unwrap().clone();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", raw_entry("../../evil", tar::EntryType::Regular, None, b"x")),
        ("absolute", raw_entry("/etc/evil", tar::EntryType::Regular, None, b"x")),
        ("symlink-out", raw_entry("blobs/sha256/evil", tar::EntryType::Symlink, Some("../../../etc/passwd"), b"")),
        ("symlink-abs", raw_entry("blobs/sha256/evil", tar::EntryType::Symlink, Some("/etc/passwd"), b"")),
        ("hardlink-out", raw_entry("blobs/sha256/evil", tar::EntryType::Link, Some("../outside"), b"")),
    ];
    for (name, entry) in cases {
        let mut bytes = fs::read(&good).unwrap();
        // Drop the end-of-archive blocks, add the hostile entry, end the archive again.
        while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|b| *b == 0) {
            bytes.truncate(bytes.len() - 512);
        }
        bytes.extend_from_slice(&entry);
        bytes.extend_from_slice(&[0u8; 1024]);
        let archive = dir.path().join(format!("{name}.tar"));
        fs::write(&archive, bytes).unwrap();
        let out = dir.path().join(format!("{name}-out.tar"));
        let failed =
            build(&["build", &s(&hello), "--from", &format!("oci-archive:{}", archive.display()), "-o", &s(&out)]);
        failed.assert_failure(name);
        assert!(failed.stderr_text().contains("hostile"), "{name}: {}", failed.stderr_text());
        assert!(!out.exists(), "{name}");
    }
    let _ = some_blob;

    // Not an archive at all, and a non-image artifact.
    let junk = dir.path().join("junk.tar");
    fs::write(&junk, b"this is not a tar archive, just some bytes that go on and on").unwrap();
    let failed = build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("oci-archive:{}", junk.display()),
        "-o",
        &s(&dir.path().join("x.tar")),
    ]);
    failed.assert_failure("junk");
    let mut artifact = BTreeMap::new();
    let config = handmade::add_blob(&mut artifact, "application/vnd.example.config.v1+json", b"{}".to_vec());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []});
    let manifest = handmade::add_blob(
        &mut artifact,
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest).unwrap(),
    );
    artifact.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [manifest]})).unwrap(),
    );
    artifact.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let artifact_dir = dir.path().join("artifact");
    handmade::write_dir(&artifact_dir, &artifact);
    let failed = build(&[
        "build",
        &s(&hello),
        "--from",
        &format!("oci:{}", artifact_dir.display()),
        "-o",
        &s(&dir.path().join("x.tar")),
    ]);
    failed.assert_failure("artifact");
    assert!(failed.stderr_text().contains("not supported"), "{}", failed.stderr_text());
    let _ = Command::new("true");
}

#[test]
fn buildah_manifest_lists_oci_and_docker() {
    let registry = Registry::start();
    let dir = scratch_dir();
    let layout = multi_platform_layout(dir.path());
    let storage = scratch_dir();
    exec_ok(oci::buildah(storage.path()).args(["manifest", "create", "zi-multi"]));
    for arch in ["amd64", "arm64"] {
        exec_ok(oci::buildah(storage.path()).args([
            "manifest",
            "add",
            "zi-multi",
            &format!("oci:{}:{arch}", layout.display()),
        ]));
    }
    let oci_dir = dir.path().join("buildah-oci");
    exec_ok(oci::buildah(storage.path()).args([
        "manifest",
        "push",
        "--all",
        "zi-multi",
        &format!("oci:{}:multi", oci_dir.display()),
    ]));
    exec_ok(oci::buildah(storage.path()).args([
        "manifest",
        "push",
        "--all",
        "--format",
        "v2s2",
        "--tls-verify=false",
        "zi-multi",
        &registry.docker_ref("docker-list:1"),
    ]));
    let raw = skopeo_inspect_with(
        &[&registry.flags()[..], &["--raw".to_string()]].concat(),
        &registry.docker_ref("docker-list:1"),
    );
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json", "{raw}");

    let arm = static_hello_arm64(dir.path());
    let amd = static_hello(dir.path());
    let out = dir.path().join("arm.tar");
    build(&["build", &s(&arm), "--from", &format!("oci:{}:multi", oci_dir.display()), "-o", &s(&out)])
        .assert_success("buildah OCI index");
    assert_eq!(image_of(&out).platform(), "linux/arm64");

    // A Docker manifest list of Docker v2s2 images: an OCI archive, and Docker runs it.
    let out = dir.path().join("amd.tar");
    build(&["build", &s(&amd), "--from", &registry.image("docker-list:1"), "-o", &s(&out), "-t", "zi-bases/on-list:1"])
        .assert_success("buildah Docker manifest list");
    let image = image_of(&out);
    assert_eq!(image.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(image.layers.iter().all(|l| l.media_type.starts_with("application/vnd.oci.")), "never mixed");
    let docker = DockerDaemon::shared();
    docker.load(&out);
    let run = docker.run("zi-bases/on-list:1", &["--cat", "/etc/base-arch"]);
    assert!(run.assert_success("docker run").stdout_text().contains("base for amd64"));
    let out = dir.path().join("arm-list.tar");
    build(&["build", &s(&arm), "--from", &registry.image("docker-list:1"), "-o", &s(&out)])
        .assert_success("arm64 from the list");
    assert_eq!(image_of(&out).platform(), "linux/arm64");
}
