//! `builtin:static`, zeroimage's embedded distroless-style base, checked with tools we did
//! not write: the archives are read here with the `tar` crate (not zeroimage's reader), the CA
//! bundle is parsed by openssl, and the static C `hello` program runs in images built on the
//! base under runc (via umoci) and under a private Docker engine.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flate2::read::MultiGzDecoder;
use serde_json::Value;
use zeroimage_tests::process::{exec, exec_ok, unique_name};
use zeroimage_tests::program::{self, HELLO_LINE};
use zeroimage_tests::{oci, zeroimage_cmd, DockerDaemon, OutputExt};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An entry of a layer, as the `tar` crate reads it.
#[derive(Debug, Clone)]
struct Entry {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
    link: Option<String>,
}

/// An OCI archive read with the `tar` crate: its files by name.
struct Archive {
    files: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    fn open(path: &Path) -> Archive {
        let mut files = BTreeMap::new();
        let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
        Archive { files }
    }

    fn blob(&self, digest: &str) -> &[u8] {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let bytes = &self.files[&format!("blobs/sha256/{hex}")];
        assert_eq!(zeroimage_tests::sha256_digest(bytes), digest, "blob content matches its name");
        bytes
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(self.blob(digest)).unwrap()
    }

    /// The only manifest of `index.json`.
    fn manifest(&self) -> Value {
        let index: Value = serde_json::from_slice(&self.files["index.json"]).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 1);
        self.json(manifests[0]["digest"].as_str().unwrap())
    }

    fn config(&self) -> Value {
        self.json(self.manifest()["config"]["digest"].as_str().unwrap())
    }

    fn layer_digests(&self) -> Vec<String> {
        self.manifest()["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// The entries of layer `digest`, gunzipped; checks its diff_id against the config.
    fn layer(&self, digest: &str) -> BTreeMap<String, Entry> {
        let mut tar_bytes = Vec::new();
        MultiGzDecoder::new(self.blob(digest)).read_to_end(&mut tar_bytes).unwrap();
        let index = self.layer_digests().iter().position(|d| d == digest).unwrap();
        assert_eq!(self.config()["rootfs"]["diff_ids"][index], zeroimage_tests::sha256_digest(&tar_bytes));
        let mut entries = BTreeMap::new();
        for entry in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(header.mtime().unwrap(), 0, "{path}: the base's mtime is the epoch");
            entries.insert(
                path,
                Entry {
                    kind: header.entry_type(),
                    mode: header.mode().unwrap(),
                    uid: header.uid().unwrap(),
                    gid: header.gid().unwrap(),
                    data,
                    link,
                },
            );
        }
        entries
    }
}

/// Runs `zeroimage ARGS…` with `SOURCE_DATE_EPOCH` set (or removed); panics unless it succeeds.
fn zeroimage_ok(args: &[&str], epoch: Option<&str>) -> Output {
    let mut cmd = zeroimage_cmd();
    cmd.args(args);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    exec_ok(&mut cmd)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Counts the certificates openssl finds in PEM `text`.
fn openssl_count_certificates(text: &str) -> usize {
    zeroimage_tests::require_tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.pem");
    fs::write(&file, text).unwrap();
    let out = exec_ok(Command::new("openssl").args(["storeutl", "-noout", "-certs"]).arg(&file).stdin(Stdio::null()));
    let text = out.stdout_text();
    let total = text.lines().find_map(|l| l.strip_prefix("Total found: ")).unwrap_or_else(|| panic!("{text}"));
    total.trim().parse().unwrap()
}

#[test]
fn base_layer_digest_ignores_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let a = dir.path().join("a.tar");
    let b = dir.path().join("b.tar");
    zeroimage_ok(&["build", path_str(&hello), "--from", "builtin:static", "-o", path_str(&a)], Some("0"));
    zeroimage_ok(&["build", path_str(&hello), "--from", "builtin:static", "-o", path_str(&b)], Some("1700000000"));
    let (a, b) = (Archive::open(&a), Archive::open(&b));
    let (la, lb) = (a.layer_digests(), b.layer_digests());
    assert_eq!(la.len(), 2, "the base's one layer, then the program's");
    assert_eq!(la[0], lb[0], "same base layer whatever SOURCE_DATE_EPOCH");
    assert_ne!(la[1], lb[1], "the program's layer follows SOURCE_DATE_EPOCH");
    assert_eq!(a.config()["created"], "1970-01-01T00:00:00Z");
    assert_eq!(b.config()["created"], "2023-11-14T22:13:20Z");
    // The program's layer sits on the base: User and Env come from the base.
    assert_eq!(a.config()["config"]["User"], "65532:65532");

    // `zeroimage base` writes the same layer, byte-identical whatever the epoch.
    let s1 = dir.path().join("s1.tar");
    let s2 = dir.path().join("s2.tar");
    zeroimage_ok(&["base", "builtin:static", "-o", path_str(&s1)], Some("5"));
    zeroimage_ok(&["base", "builtin:static", "-o", path_str(&s2)], None);
    assert_eq!(fs::read(&s1).unwrap(), fs::read(&s2).unwrap());
    assert_eq!(Archive::open(&s1).layer_digests(), vec![la[0].clone()]);
}

#[test]
fn base_archive_holds_the_listed_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("static.tar");
    zeroimage_ok(&["base", "builtin:static", "--platform", "linux/arm64", "-o", path_str(&out)], None);
    let archive = Archive::open(&out);
    let manifest_json: Value = serde_json::from_slice(&archive.files["manifest.json"]).unwrap();
    assert_eq!(manifest_json[0]["RepoTags"], serde_json::json!([format!("zeroimage-builtin-static:{VERSION}")]));

    let config = archive.config();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        ])
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["dev.zeroimage.base"], "builtin:static");
    assert_eq!(labels["dev.zeroimage.base.version"], VERSION);
    assert!(labels["dev.zeroimage.base.ca-certificates"].as_str().unwrap().starts_with("webpki-root-certs "));
    assert!(labels["dev.zeroimage.base.tzdata"].as_str().unwrap().starts_with("20"));
    assert!(config["config"].get("Entrypoint").is_none() && config["config"].get("Cmd").is_none());

    let layers = archive.layer_digests();
    assert_eq!(layers.len(), 1);
    let blob_size = archive.blob(&layers[0]).len();
    assert!(blob_size < 1024 * 1024, "the base layer is {blob_size} bytes");
    let files = archive.layer(&layers[0]);
    let text = |path: &str| String::from_utf8(files[path].data.clone()).unwrap();

    use tar::EntryType::{Directory, Regular, Symlink};
    for (path, kind, mode, uid, gid) in [
        ("etc/passwd", Regular, 0o644, 0, 0),
        ("etc/group", Regular, 0o644, 0, 0),
        ("etc/nsswitch.conf", Regular, 0o644, 0, 0),
        ("etc/os-release", Regular, 0o644, 0, 0),
        ("etc/ssl/certs/ca-certificates.crt", Regular, 0o644, 0, 0),
        ("tmp/", Directory, 0o1777, 0, 0),
        ("home/nonroot/", Directory, 0o700, 65532, 65532),
        ("root/", Directory, 0o700, 0, 0),
        ("usr/share/zoneinfo/Etc/UTC", Regular, 0o644, 0, 0),
        ("usr/share/zoneinfo/UTC", Symlink, 0o777, 0, 0),
    ] {
        let e = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!((e.kind, e.mode, e.uid, e.gid), (kind, mode, uid, gid), "{path}");
    }
    let passwd = text("etc/passwd");
    for line in [
        "root:x:0:0:root:/root:/sbin/nologin",
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
    ] {
        assert!(passwd.lines().any(|l| l == line), "{line} not in\n{passwd}");
    }
    let group = text("etc/group");
    for line in ["root:x:0:", "nonroot:x:65532:", "nobody:x:65534:"] {
        assert!(group.lines().any(|l| l == line), "{line} not in\n{group}");
    }
    let nsswitch = text("etc/nsswitch.conf");
    for want in [["passwd:", "files"], ["group:", "files"]] {
        assert!(nsswitch.lines().any(|l| l.split_whitespace().eq(want)), "{want:?} not in\n{nsswitch}");
    }
    assert!(nsswitch.lines().any(|l| l.split_whitespace().eq(["hosts:", "files", "dns"])));
    let os_release = text("etc/os-release");
    assert!(
        os_release.contains("zeroimage") && os_release.contains(&format!("VERSION_ID=\"{VERSION}\"")),
        "{os_release}"
    );

    let bundle = text("etc/ssl/certs/ca-certificates.crt");
    let pem_blocks = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(pem_blocks > 100, "{pem_blocks} certificates");
    assert_eq!(openssl_count_certificates(&bundle), pem_blocks, "openssl parses every block");

    assert_eq!(files["usr/share/zoneinfo/UTC"].link.as_deref(), Some("Etc/UTC"));
    // Europe/Paris is a file or, where tzdata merged it, a link (checked below) to one.
    assert!(matches!(files["usr/share/zoneinfo/Europe/Paris"].kind, Regular | Symlink));
    let zones = files.keys().filter(|p| p.starts_with("usr/share/zoneinfo/") && !p.ends_with('/')).count();
    assert!(zones > 500, "{zones} zones");
    // Every link resolves to a TZif file in the layer.
    for (path, entry) in files.iter().filter(|(_, e)| e.kind == Symlink) {
        let mut resolved: Vec<&str> = path.rsplit_once('/').unwrap().0.split('/').collect();
        for part in entry.link.as_deref().unwrap().split('/') {
            match part {
                ".." => drop(resolved.pop()),
                p => resolved.push(p),
            }
        }
        let target = files.get(&resolved.join("/")).unwrap_or_else(|| panic!("{path}: dangling link"));
        assert!(target.kind == Regular && target.data.starts_with(b"TZif"), "{path}");
    }
    // Nothing else: only the table's trees.
    for path in files.keys() {
        assert!(
            ["etc/", "home/", "root/", "tmp/", "usr/"].iter().any(|top| path.starts_with(top)),
            "unexpected {path}"
        );
    }
}

#[test]
fn list_shows_the_builtins() {
    let out = zeroimage_ok(&["base", "--list"], None);
    let text = out.stdout_text();
    assert!(text.starts_with("builtin:static"), "{text}");
    for path in ["/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/usr/share/zoneinfo/", "/tmp/"] {
        assert!(text.contains(path), "{path} not in\n{text}");
    }
    let bad = exec(zeroimage_cmd().args(["build", "/bin/true", "--from", "builtin:nope", "-o", "/tmp/x.tar"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stderr_text().contains("the built-ins are: builtin:static"), "{}", bad.stderr_text());
}

/// The checks every runtime must pass: `out` is `hello --uid --cat /etc/passwd --write
/// /tmp/probe --tz --cat CA_BUNDLE` run as `uid`, with TZ unset (UTC).
fn check_probe(out: &Output, uid: u32) {
    out.assert_success("hello in builtin:static");
    let text = out.stdout_text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HELLO_LINE));
    assert_eq!(lines.next(), Some(format!("uid={uid} gid={uid}").as_str()), "{text}");
    assert!(text.lines().any(|l| l == "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"), "{text}");
    assert!(text.contains("wrote /tmp/probe\n"), "{text}");
    assert!(text.contains("tz=UTC offset=+0000\n"), "{text}");
    let pem_start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| panic!("no CA bundle in\n{text}"));
    let certificates = openssl_count_certificates(&text[pem_start..]);
    assert!(certificates > 100, "{certificates} certificates");
}

const PROBE: [&str; 8] =
    ["--uid", "--cat", "/etc/passwd", "--write", "/tmp/probe", "--tz", "--cat", "/etc/ssl/certs/ca-certificates.crt"];

/// `hello --tz` output with TZ=Europe/Paris: CET (+0100) or CEST (+0200), never UTC.
fn check_paris(out: &Output) {
    out.assert_success("hello --tz with TZ=Europe/Paris");
    let text = out.stdout_text();
    assert!(
        text.contains("tz=CET offset=+0100\n") || text.contains("tz=CEST offset=+0200\n"),
        "TZ=Europe/Paris did not load the TZif file:\n{text}"
    );
}

#[test]
fn runs_under_runc() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let layout = dir.path().join("layout");
    let build = |tag: &str, extra: &[&str]| {
        let output = format!("oci:{}:{tag}", layout.display());
        let mut args = vec!["build", path_str(&hello), "--from", "builtin:static", "-o", &output];
        args.extend_from_slice(extra);
        zeroimage_ok(&args, None);
    };
    build("default", &[]);
    build("root", &["--user", "root"]);
    build("zero", &["--user", "0"]);

    let argv: Vec<&str> = std::iter::once("/hello").chain(PROBE).collect();
    check_probe(&oci::runc_run(&layout, "default", &argv), 65532);
    // `--user root` is resolved by umoci from the image's /etc/passwd.
    check_probe(&oci::runc_run(&layout, "root", &argv), 0);
    check_probe(&oci::runc_run(&layout, "zero", &argv), 0);

    let paris = oci::runc_run_with(&layout, "default", |config| {
        config["process"]["args"] = serde_json::json!(["/hello", "--tz"]);
        config["process"]["env"].as_array_mut().unwrap().push("TZ=Europe/Paris".into());
    });
    check_paris(&paris);
}

#[test]
fn runs_under_docker() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let name = unique_name("builtin-hello");
    let image = format!("{name}:1");
    let archive = dir.path().join("hello.tar");
    zeroimage_ok(
        &["build", path_str(&hello), "--from", "builtin:static", "-t", &image, "-o", path_str(&archive)],
        None,
    );
    let docker = DockerDaemon::shared();
    docker.load(&archive);
    assert_eq!(docker.inspect(&image)["Config"]["User"], "65532:65532");

    check_probe(&docker.run(&image, &PROBE), 65532);
    check_probe(&docker.run_with(&["--user", "root"], &image, &PROBE), 0);
    check_probe(&docker.run_with(&["--user", "0"], &image, &PROBE), 0);
    check_paris(&docker.run_with(&["-e", "TZ=Europe/Paris"], &image, &["--tz"]));

    // Built with --user root, the image itself runs as root.
    let root_image = format!("{name}:root");
    let root_archive = dir.path().join("hello-root.tar");
    zeroimage_ok(
        &[
            "build",
            path_str(&hello),
            "--from",
            "builtin:static",
            "--user",
            "root",
            "-t",
            &root_image,
            "-o",
            path_str(&root_archive),
        ],
        None,
    );
    docker.load(&root_archive);
    check_probe(&docker.run(&root_image, &PROBE), 0);
}

#[test]
fn docker_loads_the_base_and_builds_on_it_without_a_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let hello = program::static_hello(dir.path());
    let base_tag = format!("{}:1", unique_name("zi-static"));
    let archive = dir.path().join("s.tar");
    zeroimage_ok(&["base", "builtin:static", "-t", &base_tag, "-o", path_str(&archive)], None);
    let docker = DockerDaemon::shared();
    let loaded = docker.load(&archive);
    assert!(loaded.contains(&format!("Loaded image: {base_tag}")), "{loaded}");

    // FROM the base, COPY hello, ENTRYPOINT: with docker create / cp / commit.
    let container = unique_name("zi-static-build");
    exec_ok(docker.docker().args(["create", "--name", &container, "--network", "none", &base_tag, "/hello"]));
    exec_ok(docker.docker().arg("cp").arg(&hello).arg(format!("{container}:/hello")));
    let image = format!("{}:1", unique_name("zi-on-static"));
    exec_ok(docker.docker().args([
        "commit",
        "--change",
        r#"ENTRYPOINT ["/hello"]"#,
        "--change",
        "CMD []",
        &container,
        &image,
    ]));
    exec_ok(docker.docker().args(["rm", &container]));

    check_probe(&docker.run(&image, &PROBE), 65532);
    check_probe(&docker.run_with(&["--user", "root"], &image, &PROBE), 0);
}
