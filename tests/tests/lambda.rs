//! `--profile lambda`: one base per rule that breaks exactly that rule (each refused with that
//! one violation, nothing written or pushed), all of them at once (every violation listed), and
//! a real Lambda function (tests/fixtures/lambda-fn.c, a static C program speaking the Lambda
//! Runtime API) built with the profile, loaded into Docker 20.10 and run the way Lambda runs
//! functions (`--read-only --tmpfs /tmp --user <unprivileged>`) against a Runtime API endpoint
//! served here, answering an invocation.
//!
//! Rules that a zeroimage build cannot break (a single manifest; an entrypoint that is the
//! program's own 0755 regular file at an absolute path in the last layer) and the 10 GB size
//! limit (a 10 GB fixture is too slow) are covered by the unit tests in core/src/lambda.rs.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use zeroimage_tests::handmade::{self, add_blob, gzip, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use zeroimage_tests::program::{tiny_elf, ElfMachine};
use zeroimage_tests::{
    exec, exec_ok, scratch_dir, sha256_digest, static_hello, zeroimage, DockerDaemon, OutputExt, Registry,
};

const LAMBDA_FN_SOURCE: &str = include_str!("../fixtures/lambda-fn.c");

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// An OCI layout `DIR:latest` whose one layer is `tar`, stored with `media_type` (gzipped or
/// compressed with the zstd tool when the type says so).
fn layout_base(dir: &Path, tar: Vec<u8>, media_type: &str) -> String {
    layout_base_for(dir, tar, media_type, json!({"architecture": "amd64", "os": "linux"}))
}

/// [`layout_base`] for the platform in `platform` (`architecture`, `os`, `variant`).
fn layout_base_for(dir: &Path, tar: Vec<u8>, media_type: &str, platform: Value) -> String {
    let mut files = BTreeMap::new();
    let diff_id = sha256_digest(&tar);
    let blob = if media_type.ends_with("gzip") {
        gzip(&tar)
    } else if media_type.ends_with("zstd") {
        let path = dir.with_extension("tar");
        fs::write(&path, &tar).unwrap();
        exec_ok(Command::new("zstd").args(["-q", "-c"]).arg(&path)).stdout
    } else {
        tar
    };
    let layer = add_blob(&mut files, media_type, blob);
    let mut config = json!({"config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
    for (key, value) in platform.as_object().unwrap() {
        config[key] = value.clone();
    }
    let config = add_blob(&mut files, CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": config, "layers": [layer]});
    let mut descriptor = add_blob(&mut files, MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap());
    descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [descriptor]})).unwrap(),
    );
    handmade::write_dir(dir, &files);
    format!("oci:{}:latest", dir.display())
}

/// A layer tar with `etc/` and `etc/hosts` (0644): nothing Lambda objects to.
fn good_tar() -> Vec<u8> {
    handmade::layer_tar(&[("etc/hosts", b"127.0.0.1 localhost\n", 0o644)])
}

/// A layer tar whose `opt/app/data` comes without `opt/` and `opt/app/` entries.
fn orphan_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(2);
    header.set_mtime(0);
    builder.append_data(&mut header, "opt/app/data", &b"x\n"[..]).unwrap();
    builder.into_inner().unwrap()
}

/// The violation lines (`  - …`) of a refused build.
fn violations(out: &Output) -> Vec<String> {
    out.stderr_text().lines().filter_map(|l| l.strip_prefix("  - ")).map(str::to_string).collect()
}

/// Build `program` on `base` with `--profile lambda` and `extra`, to an archive and a push:
/// the refusal's violations; checks that nothing was written or pushed.
fn refused(dir: &Path, program: &Path, base: &str, extra: &[&str], repo: &str) -> Vec<String> {
    let registry = Registry::shared();
    let archive = dir.join(format!("{}.tar", repo.replace('/', "-")));
    let out = zeroimage(
        &[
            &["build", &s(program), "--from", base, "--profile", "lambda", "-o", &s(&archive)][..],
            &["--push", &registry.image(&format!("{repo}:1"))][..],
            extra,
        ]
        .concat(),
    );
    assert!(!out.status.success(), "{repo}: accepted: {}", out.stderr_text());
    assert!(out.stderr_text().contains("does not meet the lambda profile"), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("nothing was written or pushed"), "{}", out.stderr_text());
    assert!(!archive.exists(), "{repo}: nothing is written");
    let pushed = registry.request("GET", &format!("/v2/{repo}/tags/list"), &[], false);
    assert_eq!(pushed.status, 404, "{repo}: nothing is pushed");
    violations(&out)
}

fn assert_one(violations: Vec<String>, needle: &str) {
    assert_eq!(violations.len(), 1, "exactly one violation: {violations:#?}");
    assert!(violations[0].contains(needle), "{violations:#?}");
}

#[test]
fn each_lambda_rule_refuses_its_own_image_and_all_are_listed_at_once() {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let good = layout_base(&dir.path().join("good"), good_tar(), handmade::LAYER_GZIP_MEDIA_TYPE);

    // The good base passes (and its push goes through).
    let out = zeroimage(&[
        "build",
        &s(&hello),
        "--from",
        &good,
        "--profile",
        "lambda",
        "--push",
        &Registry::shared().image("lambda/good:1"),
    ]);
    out.assert_success("a Lambda-ready image");

    // Platform: linux/arm/v7.
    let arm = tiny_elf(&dir.path().join("arm"), ElfMachine::Arm);
    assert_one(
        refused(dir.path(), &arm, "scratch", &["--platform", "linux/arm/v7"], "lambda/platform"),
        "linux/arm/v7",
    );
    // gzip only: the program's layer in zstd, or uncompressed.
    assert_one(refused(dir.path(), &hello, &good, &["--compression", "zstd"], "lambda/zstd"), "zstd-compressed");
    assert_one(refused(dir.path(), &hello, &good, &["--compression", "none"], "lambda/none"), "uncompressed");
    // A base layer in zstd.
    let zstd_base =
        layout_base(&dir.path().join("zstd-base"), good_tar(), "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_one(refused(dir.path(), &hello, &zstd_base, &[], "lambda/zstd-base"), "zstd-compressed");
    // Media types: a non-distributable layer.
    let foreign = layout_base(
        &dir.path().join("foreign"),
        good_tar(),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    );
    assert_one(refused(dir.path(), &hello, &foreign, &[], "lambda/foreign"), "media type");
    // Readable by a non-root user.
    let secret = layout_base(
        &dir.path().join("secret"),
        handmade::layer_tar(&[("etc/hosts", b"x\n", 0o644), ("etc/secret", b"k\n", 0o600)]),
        handmade::LAYER_GZIP_MEDIA_TYPE,
    );
    assert_one(refused(dir.path(), &hello, &secret, &[], "lambda/secret"), "/etc/secret (0600)");
    // Parent directory entries in every layer.
    let orphan = layout_base(&dir.path().join("orphan"), orphan_tar(), handmade::LAYER_GZIP_MEDIA_TYPE);
    assert_one(refused(dir.path(), &hello, &orphan, &[], "lambda/orphan"), "MissingParentDirectory");

    // Everything at once: each violation listed.
    let arm_secret = layout_base_for(
        &dir.path().join("arm-secret"),
        handmade::layer_tar(&[("etc/secret", b"k\n", 0o600)]),
        handmade::LAYER_GZIP_MEDIA_TYPE,
        json!({"architecture": "arm", "os": "linux", "variant": "v7"}),
    );
    let all =
        refused(dir.path(), &arm, &arm_secret, &["--platform", "linux/arm/v7", "--compression", "zstd"], "lambda/all");
    assert_eq!(all.len(), 3, "{all:#?}");
}

/// A Lambda Runtime API endpoint (the documented contract: `next`, `response`, `error`): the
/// first `next` gets `event`; later ones wait, as Lambda's do, until the test ends. Sends
/// `(path, body)` of each POST.
fn runtime_api(event: &'static str) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (posts, received) = mpsc::channel();
    thread::spawn(move || {
        let mut served = 0;
        let mut parked: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap_or_default();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap_or_default();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().to_string());
            if method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
                if served == 0 {
                    served += 1;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n\
                         Lambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:zi\r\n\
                         Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{event}",
                        event.len()
                    );
                } else {
                    parked.push(stream); // no second invocation: the function waits
                }
            } else if method == "POST" {
                let _ = stream.write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"status\":\"OK\"}\n",
                );
                let _ = posts.send((path, String::from_utf8_lossy(&body).into_owned()));
            } else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    });
    (addr, received)
}

fn lambda_function(dir: &Path) -> PathBuf {
    let source = dir.join("lambda-fn.c");
    fs::write(&source, LAMBDA_FN_SOURCE).unwrap();
    let program = dir.join("bootstrap");
    exec_ok(Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&program).arg(&source));
    program
}

#[test]
fn a_lambda_function_built_with_the_profile_answers_an_invocation_the_way_lambda_runs_it() {
    let docker = DockerDaemon::shared();
    let registry = Registry::shared();
    let dir = scratch_dir();
    let function = lambda_function(dir.path());
    let archive = dir.path().join("fn.tar");
    let out = zeroimage(&[
        "build",
        &s(&function),
        "--profile",
        "lambda",
        "--path",
        "/var/runtime/bootstrap",
        "-o",
        &s(&archive),
        "--push",
        &registry.image("lambda/fn:1"),
        "-t",
        "zi-lambda/fn:1",
    ]);
    out.assert_success("build the function with --profile lambda");
    // What Lambda pulls: one manifest, gzip layers.
    let manifest: Value = serde_json::from_slice(
        &registry
            .request(
                "GET",
                "/v2/lambda/fn/manifests/1",
                &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
                false,
            )
            .body,
    )
    .unwrap();
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    for layer in manifest["layers"].as_array().unwrap() {
        assert!(layer["mediaType"].as_str().unwrap().ends_with("tar+gzip"), "{manifest}");
    }

    docker.load(&archive);
    let (api, posts) = runtime_api(r#"{"name":"zeroimage"}"#);
    let name = format!("zi-lambda-{}", std::process::id());
    let run = exec(docker.docker().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--pull",
        "never",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        "993:990",
        "-e",
        &format!("AWS_LAMBDA_RUNTIME_API={api}"),
        "zi-lambda/fn:1",
    ]));
    run.assert_success("docker run -d (read-only, unprivileged)");
    let answer = posts.recv_timeout(Duration::from_secs(60));
    let logs = exec(docker.docker().args(["logs", &name]));
    let _ = exec(docker.docker().args(["rm", "-f", &name]));
    let (path, body) = answer.unwrap_or_else(|_| {
        panic!("the function never answered; its output:\n{}{}", logs.stdout_text(), logs.stderr_text())
    });
    assert_eq!(path, "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"greeting": "hello, zeroimage", "uid": 993, "tmp": "ok"}));
}

#[test]
fn a_docker_save_base_passes_the_profile_and_its_push_is_all_gzip() {
    let docker = DockerDaemon::shared();
    let registry = Registry::shared();
    let dir = scratch_dir();
    let function = lambda_function(dir.path());
    let saved = docker.busybox_multilayer_save(dir.path());
    let out = zeroimage(&[
        "build",
        &s(&function),
        "--from",
        &format!("docker-archive:{}", saved.display()),
        "--profile",
        "lambda",
        "--push",
        &registry.image("lambda/on-busybox:1"),
    ]);
    out.assert_success("--profile lambda on a docker save base");
    let manifest: Value = serde_json::from_slice(
        &registry
            .request(
                "GET",
                "/v2/lambda/on-busybox/manifests/1",
                &[("Accept", "application/vnd.docker.distribution.manifest.v2+json")],
                false,
            )
            .body,
    )
    .unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers.len() >= 4, "{manifest}");
    for layer in layers {
        assert_eq!(layer["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip", "{manifest}");
    }

    // From that registry image, to an archive: the check reads every layer, and the archive
    // is written from those verified copies: each blob is downloaded once.
    let before = registry.requests().len();
    let archive = dir.path().join("from-registry.tar");
    zeroimage(&[
        "build",
        &s(&function),
        "--from",
        &registry.image("lambda/on-busybox:1"),
        "--profile",
        "lambda",
        "-o",
        &s(&archive),
    ])
    .assert_success("--profile lambda on a registry base");
    let gets: Vec<String> = registry.requests()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path().starts_with("/v2/lambda/on-busybox/blobs/"))
        .map(|r| r.path().to_string())
        .collect();
    for layer in layers {
        let path = format!("/v2/lambda/on-busybox/blobs/{}", layer["digest"].as_str().unwrap());
        assert_eq!(gets.iter().filter(|p| **p == path).count(), 1, "{path} downloaded once: {gets:#?}");
    }
}
