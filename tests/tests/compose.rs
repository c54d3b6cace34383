//! Files beside the program (`--add`) and the composable API (`core/examples/compose.rs`),
//! checked with tools we did not write: the archives are read by the test bed's own reader,
//! and the program reads the added files at run time, as the built-in non-root user, under
//! runc (umoci), a private Docker engine and podman.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use zeroimage_tests::archive::EntryKind;
use zeroimage_tests::process::{exec, exec_ok, unique_name};
use zeroimage_tests::{oci, program, zeroimage, DockerDaemon, ImageLayout, OutputExt, Podman, HELLO_LINE};

/// An asset tree: `index.html`, `css/site.css`, an executable `bin/run.sh` and a symlink.
fn assets(dir: &Path, text: &str) -> PathBuf {
    let root = dir.join("assets");
    fs::create_dir_all(root.join("css")).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("index.html"), text).unwrap();
    fs::write(root.join("css/site.css"), "body {}\n").unwrap();
    fs::write(root.join("bin/run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("index.html", root.join("latest.html")).unwrap_or(());
    root
}

fn build(args: &[&str]) -> String {
    let out = zeroimage(args);
    out.assert_success("zeroimage build");
    out.stdout_text().trim().to_string()
}

#[test]
fn added_files_are_read_at_run_time_by_the_nonroot_user() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let assets = assets(dir.path(), "<h1>assets</h1>\n");
    let config = dir.path().join("config.yaml");
    fs::write(&config, "debug: false\n").unwrap();
    let archive = dir.path().join("app.tar");
    let tag = format!("zi-add-{}:1", unique_name("t"));
    build(&[
        "build",
        hello.to_str().unwrap(),
        "--from",
        "builtin:static",
        "--add",
        &format!("{}:/srv/assets", assets.display()),
        "--add",
        &format!("{}:/etc/app/config.yaml", config.display()),
        "-o",
        archive.to_str().unwrap(),
        "--tag",
        &tag,
        "--",
        "--uid",
        "--cat",
        "/srv/assets/index.html",
        "--cat",
        "/srv/assets/latest.html",
        "--cat",
        "/etc/app/config.yaml",
    ]);

    // Layers: the base, then the added files, then the program alone.
    let layout = ImageLayout::open(&archive);
    let image = layout.image();
    assert_eq!(image.layers.len(), 3, "base, assets, program");
    let added = &image.layers[1];
    assert_eq!(
        added.paths(),
        vec![
            "etc",
            "etc/app",
            "etc/app/config.yaml",
            "srv",
            "srv/assets",
            "srv/assets/bin",
            "srv/assets/bin/run.sh",
            "srv/assets/css",
            "srv/assets/css/site.css",
            "srv/assets/index.html",
            "srv/assets/latest.html",
        ]
    );
    let run_sh = added.entry("srv/assets/bin/run.sh").unwrap();
    assert_eq!((run_sh.mode, run_sh.uid, run_sh.gid, run_sh.mtime), (0o755, 0, 0, 0), "exec bit kept, owner root");
    assert_eq!(added.entry("srv/assets/index.html").unwrap().mode, 0o644);
    assert_eq!(added.entry("srv/assets/latest.html").unwrap().kind, EntryKind::Symlink);
    assert_eq!(image.layers[2].paths(), vec!["hello"], "the program's layer holds only the program");
    let history = image.config["history"].as_array().unwrap();
    assert!(history[history.len() - 2]["created_by"].as_str().unwrap().contains("ADD"), "{history:?}");

    let expected = format!("{HELLO_LINE}\nuid=65532 gid=65532\n<h1>assets</h1>\n<h1>assets</h1>\ndebug: false\n");
    // runc, through umoci.
    let layout_dir = dir.path().join("layout");
    oci::oci_archive_to_layout(&archive, &layout_dir, "latest");
    let out = oci::runc_run(&layout_dir, "latest", &[]);
    out.assert_success("runc run");
    assert_eq!(out.stdout_text(), expected);
    // Docker.
    let docker = DockerDaemon::shared();
    docker.load(&archive);
    let out = docker.run(&tag, &[]);
    out.assert_success("docker run");
    assert_eq!(out.stdout_text(), expected);
    // podman.
    let podman = Podman::new();
    podman.load(&archive);
    let out = podman.run(&image.config_digest[7..], &[]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), expected);
}

#[test]
fn asset_layers_are_reproducible_and_leave_the_program_layer_alone() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let layer_digests = |assets: &Path, name: &str| {
        let archive = dir.path().join(name);
        build(&[
            "build",
            hello.to_str().unwrap(),
            "--add",
            &format!("{}:/srv/assets", assets.display()),
            "-o",
            archive.to_str().unwrap(),
        ]);
        ImageLayout::open(&archive).image().layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()
    };
    let a = assets(&dir.path().join("a"), "v1\n");
    // A second checkout of the same files: other mtimes and a permissive umask.
    let b = assets(&dir.path().join("b"), "v1\n");
    exec_ok(Command::new("touch").args(["-d", "2001-02-03 04:05:06"]).arg(b.join("index.html")));
    fs::set_permissions(b.join("css/site.css"), fs::Permissions::from_mode(0o666)).unwrap();
    let first = layer_digests(&a, "a.tar");
    assert_eq!(layer_digests(&b, "b.tar"), first, "the host's mtimes and modes do not matter");

    fs::write(a.join("index.html"), "v2\n").unwrap();
    let changed = layer_digests(&a, "c.tar");
    assert_ne!(changed[0], first[0], "the assets layer changed");
    assert_eq!(changed[1], first[1], "the program layer did not");
}

#[test]
fn bad_adds_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let assets = assets(dir.path(), "x\n");
    std::os::unix::fs::symlink("/etc/passwd", assets.join("escape")).unwrap();
    let fifo = dir.path().join("fifo");
    exec_ok(Command::new("mkfifo").arg(&fifo));
    let out_path = dir.path().join("out.tar");
    let cases: Vec<(String, &str)> = vec![
        (format!("{}:/srv", dir.path().join("missing").display()), "does not exist"),
        (format!("{}:srv/assets", hello.display()), "expected SRC:DEST"),
        (format!("{}:/srv/../etc", hello.display()), "normalised"),
        (format!("{}:/hello", assets.join("index.html").display()), "where the program goes"),
        (format!("{}:/srv/fifo", fifo.display()), "a FIFO"),
        (format!("{}:/srv/assets", assets.display()), "outside"),
    ];
    for (add, message) in cases {
        let out = zeroimage(&["build", hello.to_str().unwrap(), "--add", &add, "-o", out_path.to_str().unwrap()]);
        assert_ne!(out.status.code(), Some(0), "{add}");
        let text = out.stderr_text();
        assert!(text.contains(message), "{add}: {text}");
        assert!(!out_path.exists(), "{add}: nothing written");
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("zeroimage"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Asked to, a symlink out of SRC is followed: what it points to is copied.
    let followed = dir.path().join("followed.tar");
    build(&[
        "build",
        hello.to_str().unwrap(),
        "--add",
        &format!("{}:/srv/assets", assets.display()),
        "--add-follow-symlinks",
        "--add-owner",
        "65532:65532",
        "-o",
        followed.to_str().unwrap(),
    ]);
    let layout = ImageLayout::open(&followed);
    let escape = layout.image().layers[0].entry("srv/assets/escape").unwrap();
    assert_eq!((escape.kind, escape.uid), (EntryKind::File, 65532));
}

/// `core/examples/compose.rs` (in the tests' debug profile; `scripts/test.sh` also runs it with
/// `--release`, exactly as its documentation says); its archive runs in Docker, podman and
/// runc with the assets readable at /srv/assets.
#[test]
fn the_compose_example_builds_an_image_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    // A file name of its own, so the image name `<name>:latest` is this test's alone.
    let name = unique_name("compose");
    let hello = dir.path().join(&name);
    fs::copy(program::static_hello(dir.path()), &hello).unwrap();
    let assets = assets(dir.path(), "composed\n");
    let archive = dir.path().join("composed.tar");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = zeroimage_tests::process::exec_timeout(
        Command::new(cargo)
            .args(["run", "--quiet", "-p", "zeroimage", "--example", "compose", "--"])
            .arg(&hello)
            .arg(&assets)
            .arg(&archive)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        std::time::Duration::from_secs(1200),
    );
    out.assert_success("cargo run --example compose");
    let digest = out.stdout_text().trim().to_string();
    let layout = ImageLayout::open(&archive);
    assert_eq!(layout.image().digest, digest, "it prints the manifest digest");
    let entrypoint = format!("/{name}");
    assert_eq!(layout.image().config["config"]["Entrypoint"], serde_json::json!([entrypoint]));

    let args = [entrypoint.as_str(), "--uid", "--cat", "/srv/assets/index.html"];
    let expected = format!("{HELLO_LINE}\nuid=65532 gid=65532\ncomposed\n");
    let layout_dir = dir.path().join("layout");
    oci::oci_archive_to_layout(&archive, &layout_dir, "latest");
    let out = oci::runc_run(&layout_dir, "latest", &args);
    out.assert_success("runc run");
    assert_eq!(out.stdout_text(), expected);
    let docker = DockerDaemon::shared();
    docker.load(&archive);
    let out = docker.run(&format!("{name}:latest"), &args[1..]);
    out.assert_success("docker run");
    assert_eq!(out.stdout_text(), expected);
    let podman = Podman::new();
    podman.load(&archive);
    let out = podman.run(&layout.image().config_digest[7..], &args[1..]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), expected);
}

/// The README's `--add` line, run as written (in a directory holding `server`, `static/` and
/// `config.yaml`).
#[test]
fn readme_add_snippet_runs() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("bin")).unwrap();
    fs::copy(program::static_hello(&dir.path().join("bin")), dir.path().join("server")).unwrap();
    fs::create_dir(dir.path().join("static")).unwrap();
    fs::write(dir.path().join("static/app.js"), "1\n").unwrap();
    fs::write(dir.path().join("config.yaml"), "a: 1\n").unwrap();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let line = readme.lines().find(|l| l.starts_with("zeroimage build ./server --from builtin:static --add")).unwrap();
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let out = exec(zeroimage_tests::zeroimage_cmd().args(&args).current_dir(dir.path()));
    out.assert_success("the README's --add line");
    let layout = ImageLayout::open(&dir.path().join("server.tar"));
    let paths = layout.image().layers[1].paths();
    assert!(paths.contains(&"srv/static/app.js".to_string()) && paths.contains(&"etc/app/config.yaml".to_string()));
}
