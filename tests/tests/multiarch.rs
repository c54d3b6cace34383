//! Multi-platform images from several programs, checked with real foreign-architecture
//! programs (static C cross-compiled by Debian's gcc-aarch64-linux-gnu and
//! gcc-arm-linux-gnueabihf) run by real runtimes under QEMU user emulation: Docker, podman,
//! umoci + runc; the index read by skopeo from the archive and from a real registry; a base
//! index made by buildah.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use zeroimage_tests::oci::{skopeo, umoci_image};
use zeroimage_tests::process::{exec_ok, unique_name};
use zeroimage_tests::program::{self, ensure_qemu, HELLO_LINE};
use zeroimage_tests::{oci, zeroimage, Containerd, DockerDaemon, OutputExt, Podman, Registry};

/// `DIR/linux_<arch>/server` for amd64, arm64 and armv7: the goreleaser layout.
fn dist(dir: &Path) -> Vec<PathBuf> {
    ensure_qemu();
    let builds = [
        ("linux_amd64", program::static_hello(dir)),
        ("linux_arm64", program::static_hello_arm64(dir)),
        ("linux_armv7", program::static_hello_armhf(dir)),
    ];
    builds
        .into_iter()
        .map(|(name, built)| {
            let path = dir.join("dist").join(name).join("server");
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::copy(built, &path).unwrap();
            path
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn build(args: &[&str]) -> Output {
    zeroimage(args)
}

fn platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut text = format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"].as_str().unwrap());
            if let Some(v) = p["variant"].as_str() {
                text = format!("{text}/{v}");
            }
            text
        })
        .collect()
}

fn expect_machine(out: &Output, machine: &str) {
    out.assert_success("run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nmachine={machine}\n"));
}

#[test]
fn an_archive_index_runs_on_every_platform() {
    let dir = tempfile::tempdir().unwrap();
    let programs = dist(dir.path());
    let archive = dir.path().join("server.tar");
    let tag = format!("{}:1.0", unique_name("zi-multi-server"));
    let mut args = vec!["build"];
    args.extend(programs.iter().map(|p| s(p)));
    args.extend(["--from", "builtin:static", "--tag", &tag, "-o", s(&archive), "--json", "--", "--uname"]);
    let out = build(&args);
    out.assert_success("zeroimage build (3 programs)");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The index, as skopeo reads it.
    let raw = oci::skopeo_inspect_raw(&format!("oci-archive:{}", archive.display()));
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64", "linux/arm/v7"], "the ARM variant from the ELF");
    assert_eq!(result["digest"], result["index_digest"]);
    let manifests = result["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3);
    for (m, d) in manifests.iter().zip(raw["manifests"].as_array().unwrap()) {
        assert_eq!(m["digest"], d["digest"]);
    }
    assert_eq!(result["written"][0]["digest"], result["index_digest"]);

    // Reproducible: the same programs give the same index.
    let again = dir.path().join("again.tar");
    let mut args2 = args.clone();
    let o = args2.iter().position(|a| *a == s(&archive)).unwrap();
    args2[o] = s(&again);
    let out = build(&args2);
    out.assert_success("again");
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["digest"], result["digest"]);
    assert_eq!(fs::read(&archive).unwrap(), fs::read(&again).unwrap(), "byte-identical archives");

    // Docker 20.10 loads the amd64 image (manifest.json), and runs it.
    let docker = DockerDaemon::shared();
    docker.load(&archive);
    expect_machine(&docker.run(&tag, &[]), "x86_64");

    // containerd imports every platform and runs the one asked for (arm64 under QEMU).
    let ctr = Containerd::shared().run_platform(&archive, &tag, Some("linux/arm64"));
    expect_machine(&ctr, "aarch64");

    // --docker-platform names another image for Docker: arm64, run under QEMU.
    let arm_archive = dir.path().join("server-arm64.tar");
    let arm_tag = format!("zi-multi/{}:1.0", unique_name("server-arm"));
    let mut args3 = vec!["build"];
    args3.extend(programs.iter().map(|p| s(p)));
    args3.extend([
        "--from",
        "builtin:static",
        "--tag",
        &arm_tag,
        "-o",
        s(&arm_archive),
        "--docker-platform",
        "linux/arm64",
        "--",
        "--uname",
    ]);
    build(&args3).assert_success("--docker-platform linux/arm64");
    docker.load(&arm_archive);
    expect_machine(&docker.run_with(&["--platform", "linux/arm64"], &arm_tag, &[]), "aarch64");

    // umoci + runc on the arm64 and arm manifests (skopeo picks them from the index).
    for (arch, variant, machine) in [("arm64", None, "aarch64"), ("arm", Some("v7"), "armv7l")] {
        let layout = dir.path().join(format!("layout-{arch}"));
        let mut copy = skopeo();
        copy.args(["--override-arch", arch]);
        if let Some(v) = variant {
            copy.args(["--override-variant", v]);
        }
        exec_ok(copy.args([
            "copy",
            &format!("oci-archive:{}", archive.display()),
            &format!("oci:{}:{arch}", layout.display()),
        ]));
        expect_machine(&oci::runc_run(&layout, arch, &[]), machine);
    }
}

#[test]
fn pushes_the_index_and_per_platform_tags() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let programs = dist(dir.path());
    let target = registry.image("team/server:1.0");
    let mut args = vec!["build"];
    args.extend(programs.iter().take(2).map(|p| s(p)));
    args.extend(["--from", "builtin:static", "--push", &target, "--platform-tags", "--", "--uname"]);
    let out = build(&args);
    out.assert_success("push 2 platforms");
    let index_ref = out.stdout_text().trim().to_string();
    assert!(index_ref.starts_with(&format!("{}/team/server@sha256:", registry.addr())), "{index_ref}");

    let raw = oci::skopeo_inspect_with(
        &[&registry.flags()[..], &["--raw".to_string()]].concat(),
        &registry.docker_ref("team/server:1.0"),
    );
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);
    for (suffix, digest) in [("amd64", &raw["manifests"][0]["digest"]), ("arm64", &raw["manifests"][1]["digest"])] {
        let single = oci::skopeo_inspect_with(
            &[&registry.flags()[..], &["--raw".to_string()]].concat(),
            &registry.docker_ref(&format!("team/server:1.0-{suffix}")),
        );
        assert_eq!(single["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{suffix}: a single manifest");
        let inspected =
            oci::skopeo_inspect_with(&registry.flags(), &registry.docker_ref(&format!("team/server:1.0-{suffix}")));
        assert_eq!(inspected["Digest"], *digest, "{suffix}: the index's own manifest");
    }

    // podman pulls the arm64 image from the index and runs it under QEMU.
    let podman = Podman::new();
    exec_ok(podman.command().args(["pull", "--platform", "linux/arm64"]).args(registry.flags()).arg(&target));
    expect_machine(&podman.run_with(&["--platform", "linux/arm64"], &target, &[]), "aarch64");
}

#[test]
fn each_program_gets_its_platforms_base() {
    let dir = tempfile::tempdir().unwrap();
    let programs = dist(dir.path());
    // A two-platform base index, made by umoci and buildah.
    let layout = dir.path().join("base-layout");
    for arch in ["amd64", "arm64"] {
        let marker = dir.path().join(format!("arch-{arch}"));
        fs::write(&marker, format!("base for {arch}\n")).unwrap();
        umoci_image(&layout, arch, &[(&marker, "/etc/base-arch")], &[&format!("--architecture={arch}"), "--os=linux"]);
    }
    let storage = tempfile::tempdir().unwrap();
    let list = unique_name("zi-base");
    exec_ok(oci::buildah(storage.path()).args(["manifest", "create", &list]));
    for arch in ["amd64", "arm64"] {
        exec_ok(oci::buildah(storage.path()).args([
            "manifest",
            "add",
            &list,
            &format!("oci:{}:{arch}", layout.display()),
        ]));
    }
    let base_dir = dir.path().join("base-index");
    exec_ok(oci::buildah(storage.path()).args([
        "manifest",
        "push",
        "--all",
        &list,
        &format!("oci:{}:multi", base_dir.display()),
    ]));
    let base = format!("oci:{}:multi", base_dir.display());

    let archive = dir.path().join("on-base.tar");
    let out = build(&[
        "build",
        s(&programs[0]),
        s(&programs[1]),
        "--from",
        &base,
        "-o",
        s(&archive),
        "--",
        "--cat",
        "/etc/base-arch",
    ]);
    out.assert_success("build on a base index");
    for (arch, machine_line) in [("amd64", "base for amd64"), ("arm64", "base for arm64")] {
        let layout_dir = dir.path().join(format!("out-{arch}"));
        exec_ok(skopeo().args([
            "--override-arch",
            arch,
            "copy",
            &format!("oci-archive:{}", archive.display()),
            &format!("oci:{}:{arch}", layout_dir.display()),
        ]));
        let run = oci::runc_run(&layout_dir, arch, &[]);
        run.assert_success("runc");
        assert_eq!(run.stdout_text(), format!("{HELLO_LINE}\n{machine_line}\n"), "{arch} got its own base");
    }

    // armv7 is not in the base: refused, listing what it offers, nothing written.
    let missing = dir.path().join("missing.tar");
    let out = build(&["build", s(&programs[0]), s(&programs[2]), "--from", &base, "-o", s(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    let text = out.stderr_text();
    assert!(text.contains("linux/arm/v7") && text.contains("linux/arm64"), "{text}");
    assert!(!missing.exists());
}

#[test]
fn bad_sets_of_programs_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let programs = dist(dir.path());
    let other_name = dir.path().join("other-name");
    fs::copy(&programs[1], &other_name).unwrap();
    let dynamic = program::dynamic_hello(dir.path());
    let second_amd64 = dir.path().join("again").join("server");
    fs::create_dir_all(second_amd64.parent().unwrap()).unwrap();
    fs::copy(&programs[0], &second_amd64).unwrap();
    let out_path = dir.path().join("out.tar");
    let arm64_as_amd64 = format!("linux/amd64={}", programs[1].display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![s(&programs[0]).into(), s(&second_amd64).into()], "are both for linux/amd64"),
        (vec![s(&programs[0]).into(), arm64_as_amd64], "arm64"),
        (vec![s(&programs[0]).into(), s(&other_name).into()], "--path"),
        (vec![s(&programs[1]).into(), s(&dynamic).into(), "--path".into(), "/server".into()], "hello-dynamic"),
    ];
    for (args, message) in cases {
        let mut all: Vec<String> = vec!["build".into()];
        all.extend(args.clone());
        all.extend(["-o".into(), s(&out_path).into()]);
        let out = build(&all.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stderr_text().contains(message), "{args:?}: {}", out.stderr_text());
        assert!(!out_path.exists(), "{args:?}: nothing written");
    }
    // With --path, different file names are fine.
    let out = build(&["build", s(&programs[0]), s(&other_name), "--path", "/server", "-o", s(&out_path)]);
    out.assert_success("--path");
}

/// The README's "Multi-platform images" commands, run as written in a goreleaser layout, with
/// the test registry standing in for registry.example.com.
#[test]
fn readme_multi_platform_snippets_run() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    dist(dir.path());
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("## Multi-platform images").nth(1).unwrap();
    let block = section.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let commands: Vec<String> = block.replace("\\\n", " ").lines().map(str::to_string).collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    for command in commands {
        let command = command.replace("registry.example.com", registry.addr());
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let out = exec_ok(zeroimage_tests::zeroimage_cmd().args(&args).current_dir(dir.path()));
        assert!(out.status.success());
    }
    let raw = oci::skopeo_inspect_raw(&format!("oci-archive:{}", dir.path().join("server.tar").display()));
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let single = oci::skopeo_inspect_with(
        &[&registry.flags()[..], &["--raw".to_string()]].concat(),
        &registry.docker_ref("team/server:1.0-arm64"),
    );
    assert_eq!(single["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}
