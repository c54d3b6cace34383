//! Smoke tests of the test bed itself: every helper against the real tools, without
//! zeroimage. Images here are made by umoci (and by hand), then run by runc, pushed to the
//! registry with skopeo, loaded and run by Docker and podman.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zeroimage_tests::oci::{self, skopeo_copy};
use zeroimage_tests::process::{exec, exec_ok, signal};
use zeroimage_tests::program::{self, ElfMachine, HELLO_LINE};
use zeroimage_tests::registry::curl;
use zeroimage_tests::{
    handmade, sha256_digest, sha256_file, DockerDaemon, EntryKind, ImageLayout, OutputExt, Podman, Registry,
    RegistryOptions,
};

/// An OCI layout `DIR/layout` made by umoci, holding `DIR/hello` at `/hello` as image
/// `t` with `ENTRYPOINT ["/hello"]`. Returns (layout, hello).
fn umoci_hello(dir: &Path) -> (PathBuf, PathBuf) {
    let hello = program::static_hello(dir);
    let layout = dir.join("layout");
    oci::umoci_image(&layout, "t", &[(hello.as_path(), "/hello")], &["--config.entrypoint=/hello"]);
    (layout, hello)
}

/// Packs image `t` of `layout` into `archive` with skopeo (`format` is `oci-archive` or
/// `docker-archive`, the latter named `hello:t`).
fn pack(layout: &Path, format: &str, archive: &Path) {
    let src = format!("oci:{}:t", layout.display());
    let dest = match format {
        "docker-archive" => format!("docker-archive:{}:hello:t", archive.display()),
        _ => format!("{format}:{}", archive.display()),
    };
    skopeo_copy::<&str>(&[], &src, &dest);
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn hello_programs_build_and_behave() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let out = exec_ok(
        Command::new(&hello)
            .args(["--uid", "--env", "ZI_GREETING", "--env", "ZI_UNSET", "x"])
            .env("ZI_GREETING", "hi there")
            .env_remove("ZI_UNSET"),
    );
    let uid = exec_ok(Command::new("id").arg("-u")).stdout_text();
    let gid = exec_ok(Command::new("id").arg("-g")).stdout_text();
    assert_eq!(
        out.stdout_text(),
        format!(
            "{HELLO_LINE}\nuid={} gid={}\nenv ZI_GREETING=hi there\nenv ZI_UNSET is unset\narg=x\n",
            uid.trim(),
            gid.trim()
        )
    );

    let file = dir.path().join("written");
    let out = exec_ok(Command::new(&hello).arg("--write").arg(&file).arg("--cat").arg(&file));
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nwrote {}\nwritten by hello\n", file.display()));
    let out = exec(Command::new(&hello).args(["--cat", "/nonexistent", "--exit", "7"]));
    assert_eq!(out.status.code(), Some(7));
    let out = exec(Command::new(&hello).args(["--cat", "/nonexistent"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout_text().contains("error: cat /nonexistent:"));
    let out = exec_ok(Command::new(&hello).args(["--tz", "--cwd"]).env("TZ", "UTC0").current_dir(dir.path()));
    assert!(out.stdout_text().contains("tz=UTC offset=+0000\n"), "{}", out.stdout_text());
    assert!(out.stdout_text().contains(&format!("cwd={}\n", dir.path().display())));

    // Linkage, read with binutils rather than trusted.
    let headers = |path: &Path| exec_ok(Command::new("readelf").arg("-hl").arg(path)).stdout_text();
    assert!(!headers(&hello).contains("INTERP"), "static hello has PT_INTERP");
    let dynamic = program::dynamic_hello(dir.path());
    assert!(headers(&dynamic).contains("INTERP"));
    exec_ok(&mut Command::new(&dynamic));
    let arm64 = program::static_hello_arm64(dir.path());
    let arm64_headers = headers(&arm64);
    assert!(arm64_headers.contains("AArch64") && !arm64_headers.contains("INTERP"));

    for (machine, readelf_name) in [
        (ElfMachine::X86_64, "Advanced Micro Devices X86-64"),
        (ElfMachine::Aarch64, "AArch64"),
        (ElfMachine::Riscv64, "RISC-V"),
        (ElfMachine::Ppc64le, "PowerPC64"),
        (ElfMachine::S390x, "IBM S/390"),
        (ElfMachine::Arm, "ARM"),
        (ElfMachine::I386, "Intel 80386"),
    ] {
        let path = program::tiny_elf(&dir.path().join(format!("{machine:?}")), machine);
        let out = exec_ok(Command::new("readelf").arg("-hl").arg(&path));
        let text = out.stdout_text();
        assert!(
            text.lines().any(|line| line.trim_start().starts_with("Machine:") && line.ends_with(readelf_name)),
            "{machine:?}: {text}"
        );
        assert!(text.contains("EXEC (Executable file)") && text.contains("LOAD"), "{text}");
        assert!(!text.contains("INTERP"));
        assert_eq!(out.stderr_text(), "", "readelf complains about {machine:?}");
    }

    let script = program::shell_script(dir.path());
    assert_eq!(exec_ok(&mut Command::new(&script)).stdout_text(), "hello from a script\n");
}

#[test]
fn umoci_image_runs_with_runc_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, hello) = umoci_hello(dir.path());

    // runc runs the image config's entrypoint, and the args we give.
    let out = oci::runc_run(&layout, "t", &[]);
    out.assert_success("runc run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
    let out = oci::runc_run_with(&layout, "t", |config| {
        config["process"]["args"] = json!(["/hello", "--uid", "--env", "ZI_X", "--cwd"]);
        config["process"]["env"].as_array_mut().unwrap().push(json!("ZI_X=42"));
    });
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nuid=0 gid=0\nenv ZI_X=42\ncwd=/\n"));
    let out = oci::runc_run(&layout, "t", &["/hello", "--exit", "3"]);
    assert_eq!(out.status.code(), Some(3));

    // The independent reader agrees with umoci's layout and with skopeo.
    let facts = ImageLayout::open(&layout);
    let image = facts.image();
    assert_eq!(image.platform(), "linux/amd64");
    assert_eq!(image.config["config"]["Entrypoint"], json!(["/hello"]));
    assert_eq!(image.ref_annotation("org.opencontainers.image.ref.name"), Some("t"));
    assert_eq!(image.layers.len(), 1);
    let layer = &image.layers[0];
    assert!(layer.gzip.is_some() && layer.has_end_of_archive);
    let entry = layer.entry("hello").expect("hello in the layer");
    assert_eq!(entry.kind, EntryKind::File);
    assert_eq!(entry.mode & 0o777, 0o755);
    assert_eq!(entry.digest.as_deref(), Some(sha256_file(&hello).as_str()));
    let skopeo = oci::skopeo_inspect(&format!("oci:{}:t", layout.display()));
    assert_eq!(skopeo["Digest"], json!(image.digest));
    assert_eq!(sha256_digest(&oci::skopeo_inspect_raw_bytes(&format!("oci:{}:t", layout.display()))), image.digest);
    assert_eq!(
        oci::skopeo_inspect_config(&format!("oci:{}:t", layout.display()))["rootfs"]["diff_ids"],
        json!(image.diff_ids())
    );

    // Through an OCI archive and back into a layout.
    let archive = dir.path().join("hello.tar");
    pack(&layout, "oci-archive", &archive);
    let packed = ImageLayout::open(&archive);
    assert!(!packed.entries.is_empty());
    assert_eq!(packed.image().config_digest, image.config_digest);
    assert_eq!(packed.image().diff_ids(), image.diff_ids());
    let unpacked = dir.path().join("unpacked");
    oci::oci_archive_to_layout(&archive, &unpacked, "copy");
    assert_eq!(
        oci::runc_run(&unpacked, "copy", &["/hello", "again"]).stdout_text(),
        format!("{HELLO_LINE}\narg=again\n")
    );

    // oci-image-tool accepts it and notices a corrupted blob.
    oci::oci_image_tool_validate(&archive).assert_success("oci-image-tool validate");
    oci::oci_image_tool_validate(&layout).assert_success("oci-image-tool validate");
    let corrupt = dir.path().join("corrupt");
    let mut files = facts.files.clone();
    let manifest_path = zeroimage_tests::archive::blob_path(&image.digest);
    files.get_mut(&manifest_path).unwrap().push(b'\n');
    handmade::write_dir(&corrupt, &files);
    oci::oci_image_tool_validate(&corrupt).assert_failure("validating a corrupt layout");
    let problems = ImageLayout::read_dir(&corrupt).unwrap().problems;
    assert!(problems.iter().any(|p| p.contains(&manifest_path)), "{problems:?}");
}

#[test]
fn reader_checks_handmade_archives() {
    let dir = tempfile::tempdir().unwrap();
    let layer = handmade::layer_tar(&[("app/bin/tool", b"\x7fELF tool", 0o755)]);
    let config = json!({"architecture": "arm64", "os": "linux", "variant": "v8",
                        "config": {"Entrypoint": ["/app/bin/tool"]}});
    let files = handmade::oci_layout_files(std::slice::from_ref(&layer), config, Some("v1"));

    let good = dir.path().join("good.tar");
    handmade::write_tar(&good, &files);
    let facts = ImageLayout::open(&good);
    let image = facts.image();
    assert_eq!(image.platform(), "linux/arm64/v8");
    assert_eq!(image.diff_ids(), vec![sha256_digest(&layer)]);
    assert_eq!(image.layers[0].paths(), ["app", "app/bin", "app/bin/tool"]);
    let gzip = image.layers[0].gzip.as_ref().unwrap();
    assert_eq!((gzip.mtime, gzip.filename.as_ref()), (0, None));
    assert_eq!(image.layers[0].entry("/app/bin/tool").unwrap().mode, 0o755);
    // skopeo reads the handmade archive too.
    let inspected = oci::skopeo_inspect(&format!("oci-archive:{}", good.display()));
    assert_eq!(inspected["Digest"], json!(image.digest));
    assert_eq!(inspected["Architecture"], "arm64");

    // A blob whose content does not match its name.
    let mut bad_blob = files.clone();
    let layer_path = zeroimage_tests::archive::blob_path(&image.layers[0].digest);
    bad_blob.insert(layer_path.clone(), handmade::gzip(b"not the layer"));
    let problems = read_problems(dir.path(), "bad-blob.tar", &bad_blob);
    assert!(problems.iter().any(|p| p.starts_with(&layer_path)), "{problems:?}");

    // A config whose diff_ids do not match the layers.
    let wrong = handmade::oci_layout_files(
        std::slice::from_ref(&layer),
        json!({"architecture": "amd64", "os": "linux",
               "rootfs": {"type": "layers", "diff_ids": [sha256_digest(b"something else")]}}),
        None,
    );
    let problems = read_problems(dir.path(), "wrong-diff-id.tar", &wrong);
    assert!(problems.iter().any(|p| p.contains("diff_ids")), "{problems:?}");

    // Docker's manifest.json naming a layer that is not there.
    let mut docker = files.clone();
    docker.insert(
        "manifest.json".into(),
        serde_json::to_vec(&json!([{
            "Config": zeroimage_tests::archive::blob_path(&image.config_digest),
            "RepoTags": ["tool:v1"],
            "Layers": ["blobs/sha256/0000"],
        }]))
        .unwrap(),
    );
    let problems = read_problems(dir.path(), "docker.tar", &docker);
    assert!(problems.iter().any(|p| p.contains("blobs/sha256/0000")), "{problems:?}");

    // A missing index.json cannot be read at all.
    let mut no_index = files.clone();
    no_index.remove("index.json");
    let path = dir.path().join("no-index.tar");
    handmade::write_tar(&path, &no_index);
    assert!(ImageLayout::read(&path).unwrap_err().contains("index.json"));
}

fn read_problems(dir: &Path, name: &str, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let path = dir.join(name);
    handmade::write_tar(&path, files);
    ImageLayout::read(&path).unwrap().problems
}

#[test]
fn registries_serve_skopeo_and_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = umoci_hello(dir.path());
    let digest = ImageLayout::open(&layout).image().digest.clone();
    let src = format!("oci:{}:t", layout.display());

    // Plain HTTP, no auth.
    let registry = Registry::start();
    assert!(registry.addr().starts_with("127.0.0.1:"));
    skopeo_copy(&registry.dest_flags(), &src, &registry.docker_ref("hello:1"));
    let inspected = oci::skopeo_inspect_with(&registry.flags(), &registry.docker_ref("hello:1"));
    assert_eq!(inspected["Digest"], json!(digest));
    let catalog = registry.get("/v2/_catalog");
    assert_eq!(catalog.status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&catalog.body).unwrap(), json!({"repositories": ["hello"]}));
    let manifest = registry.request("GET", "/v2/hello/manifests/1", &[("Accept", handmade::MANIFEST_MEDIA_TYPE)], true);
    assert_eq!(sha256_digest(&manifest.body), digest);
    assert_eq!(manifest.header("Docker-Content-Digest"), Some(digest.as_str()));
    let requests = registry.requests();
    assert!(
        requests.iter().any(|r| r.method == "PUT" && r.path() == "/v2/hello/manifests/1" && r.status == 201),
        "{requests:?}"
    );

    // podman pulls from it and runs the image.
    let podman = Podman::new();
    podman.pull(&registry, "hello:1");
    let out = podman.run(&registry.image("hello:1"), &["--uid"]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nuid=0 gid=0\n"));

    // HTTPS with Basic auth.
    let secure = RegistryOptions::default().auth("alice", "s3cret").tls().start();
    assert!(secure.ca_cert().unwrap().is_file());
    assert!(secure.cert_dir().unwrap().join("ca.crt").is_file());
    assert_eq!(secure.request("GET", "/v2/", &[], false).status, 401);
    assert_eq!(secure.get("/v2/").status, 200);
    skopeo_copy(&secure.dest_flags(), &src, &secure.docker_ref("hello:1"));
    let inspected = oci::skopeo_inspect_with(&secure.flags(), &secure.docker_ref("hello:1"));
    assert_eq!(inspected["Digest"], json!(digest));
    // Without credentials, or without trusting the CA, skopeo is turned away.
    let cert_dir = format!("--cert-dir={}", secure.cert_dir().unwrap().display());
    exec(oci::skopeo().args(["inspect", &cert_dir]).arg(secure.docker_ref("hello:1")))
        .assert_failure("skopeo inspect without credentials");
    assert!(curl("GET", &format!("{}/v2/", secure.url()), &[], None, None).is_err());
    // Docker-style config.json with the credentials.
    let config = secure.write_docker_config(&dir.path().join("docker-config"));
    let config: Value = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    assert_eq!(config["auths"][secure.addr()]["auth"], json!("YWxpY2U6czNjcmV0"));

    // Dropping stops exactly that process and removes its files.
    let (pid, log) = (secure.pid(), secure.log_path().to_path_buf());
    drop(secure);
    assert!(!process_alive(pid), "registry {pid} still running");
    assert!(!log.exists());
}

#[test]
fn docker_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = umoci_hello(dir.path());
    let archive = dir.path().join("hello-docker.tar");
    pack(&layout, "docker-archive", &archive);

    let docker = DockerDaemon::start();
    assert!(docker.socket().to_string_lossy().len() < 108);
    assert!(docker.load(&archive).contains("Loaded image: hello:t"));
    let out = docker.run("hello:t", &[]);
    out.assert_success("docker run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
    let out = docker.run_with(&["--user", "1234:5678"], "hello:t", &["--uid", "x"]);
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nuid=1234 gid=5678\narg=x\n"));
    let inspected = docker.inspect("hello:t");
    assert_eq!(inspected["Config"]["Entrypoint"], json!(["/hello"]));
    assert_eq!(inspected["Architecture"], "amd64");
    assert!(docker.has_image("hello:t"));
    assert!(!docker.has_image("nothing:here"));
    assert!(docker.images().iter().any(|i| i["Repository"] == "hello"));
    // --pull never: a missing image fails locally instead of reaching for Docker Hub.
    docker.run("missing:image", &[]).assert_failure("docker run of a missing image");
    // A pure OCI archive is not enough for Docker 20.10.
    let oci_archive = dir.path().join("hello-oci.tar");
    pack(&layout, "oci-archive", &oci_archive);
    docker.try_load(&oci_archive).assert_failure("docker load of a pure OCI archive");

    let pid = docker.pid();
    drop(docker);
    assert!(wait_gone(pid, Duration::from_secs(5)), "dockerd {pid} still running");
}

#[test]
fn podman_loads_oci_archives() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = umoci_hello(dir.path());
    let archive = dir.path().join("hello.tar");
    pack(&layout, "oci-archive", &archive);
    let podman = Podman::new();
    let loaded = podman.load(&archive);
    let name = loaded
        .lines()
        .find_map(|line| line.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load said {loaded:?}"))
        .to_string();
    let out = podman.run_with(&["--env", "ZI_X=42"], &name, &["--env", "ZI_X"]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\nenv ZI_X=42\n"));
    assert_eq!(podman.inspect(&name)["Config"]["Entrypoint"], json!(["/hello"]));
}

/// The binary the Python and Node suites use: serves until stdin closes; if it dies, its
/// watchdog still stops the registry and removes its files.
#[test]
fn testbed_binary_serves_and_cleans_up() {
    let bin = env!("CARGO_BIN_EXE_zeroimage-testbed");
    let start = || {
        let mut child = Command::new(bin)
            .args(["registry", "--auth", "bob:pw", "--tls"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line).unwrap();
        (child, info)
    };
    let check = |info: &Value| {
        let url = format!("{}/v2/", info["url"].as_str().unwrap());
        let ca = PathBuf::from(info["ca_cert"].as_str().unwrap());
        let response = curl("GET", &url, &[], Some(&ca), Some(("bob", "pw"))).unwrap();
        assert_eq!(response.status, 200);
        (info["pid"].as_u64().unwrap() as u32, PathBuf::from(info["storage"].as_str().unwrap()))
    };

    // Closing stdin stops it.
    let (mut child, info) = start();
    let (pid, storage) = check(&info);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(!process_alive(pid) && !storage.exists());

    // Killing it: the watchdog stops the registry and removes its directory.
    let (mut child, info) = start();
    let (pid, storage) = check(&info);
    signal(child.id(), "KILL");
    child.wait().unwrap();
    assert!(wait_gone(pid, Duration::from_secs(10)), "registry {pid} outlived its owner");
    let deadline = Instant::now() + Duration::from_secs(5);
    while storage.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!storage.exists(), "{} left behind", storage.display());

    // `inspect` prints the independent reader's facts.
    let dir = tempfile::tempdir().unwrap();
    let files = handmade::oci_layout_files(
        &[handmade::layer_tar(&[("x", b"x", 0o644)])],
        json!({"architecture": "amd64", "os": "linux"}),
        None,
    );
    let archive = dir.path().join("x.tar");
    handmade::write_tar(&archive, &files);
    let out = exec_ok(Command::new(bin).arg("inspect").arg(&archive));
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["problems"], json!([]));
    assert_eq!(facts["images"][0]["layers"][0]["entries"][0]["path"], "x");
}

/// `shared()` instances start once per process; the watchdog stops them at exit.
#[test]
fn shared_registry_is_started_once() {
    let first = Registry::shared();
    let second = Registry::shared();
    assert_eq!(first.addr(), second.addr());
    assert!(process_alive(first.pid()));
    assert_eq!(first.get("/v2/").status, 200);
}
