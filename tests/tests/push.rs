//! Push to real registries (distribution 2.8 with htpasswd over TLS, and with Bearer token
//! auth), with credentials from Docker's config and credential helpers, through a
//! fault-injecting proxy; checked with podman, skopeo and the registry's own access log.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use zeroimage_tests::oci::skopeo;
use zeroimage_tests::proxy::{Fault, FaultProxy};
use zeroimage_tests::token::TokenRegistry;
use zeroimage_tests::{
    exec, exec_ok, registry::base64, scratch_dir, static_hello, zeroimage_cmd, OutputExt, Podman, Registry,
    RegistryOptions, HELLO_LINE,
};

/// A private home for credentials: `DOCKER_CONFIG`, no other stores, and a `bin` directory
/// put first on `PATH` (for credential helper scripts).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home { dir: scratch_dir() };
        fs::create_dir_all(home.docker_dir()).unwrap();
        fs::create_dir_all(home.bin()).unwrap();
        home
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn docker_dir(&self) -> PathBuf {
        self.path().join("docker")
    }
    fn config(&self) -> PathBuf {
        self.docker_dir().join("config.json")
    }
    fn bin(&self) -> PathBuf {
        self.path().join("bin")
    }
    fn zeroimage(&self) -> Command {
        let mut cmd = zeroimage_cmd();
        let path = format!("{}:{}", self.bin().display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("DOCKER_CONFIG", self.docker_dir())
            .env("HOME", self.path())
            .env("PATH", path)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }
    fn hello(&self) -> PathBuf {
        static_hello(self.path())
    }
}

/// `(user, password)` of the registries in these tests; the password is grepped for in output.
const USER: &str = "pushuser";
const PASSWORD: &str = "pw-Zq81-never-printed";

fn pushed_lines(out: &Output) -> Vec<String> {
    out.stdout_text().lines().map(str::to_string).collect()
}

fn digest_of(line: &str) -> String {
    line.rsplit_once('@').expect("REF@DIGEST").1.to_string()
}

/// Upload requests (POST/PATCH/PUT on blobs/uploads) in a slice of the access log.
fn uploads(requests: &[zeroimage_tests::RegistryRequest]) -> usize {
    requests.iter().filter(|r| r.path().contains("/blobs/uploads/") && r.method != "GET").count()
}

#[test]
fn push_to_tls_htpasswd_registry_then_pull_with_podman_and_repush_uploads_nothing() {
    let registry = RegistryOptions::default().auth(USER, PASSWORD).tls().start();
    let home = Home::new();
    let hello = home.hello();
    let ca = registry.ca_cert().unwrap();
    let archive = home.path().join("hello.tar");
    let push = |extra: &[&str]| -> Output {
        exec(
            home.zeroimage()
                .arg("build")
                .arg(&hello)
                .arg("--ca-cert")
                .arg(ca)
                .args(["--creds", &format!("{USER}:{PASSWORD}")])
                .args([
                    "--push",
                    &registry.image("team/hello:1.0"),
                    "--push",
                    &format!("docker://{}", registry.image("team/hello:latest")),
                ])
                .args(extra),
        )
    };
    let out = push(&["-o", archive.to_str().unwrap()]);
    out.assert_success("zeroimage build --push (TLS, htpasswd)");
    let lines = pushed_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let digest = digest_of(&lines[0]);
    assert_eq!(lines[0], format!("{}@{digest}", registry.image("team/hello")));
    assert!(archive.is_file(), "--output is written too");
    assert!(!out.stderr_text().contains(PASSWORD));

    // skopeo sees both tags with our digest.
    for tag in ["1.0", "latest"] {
        let inspect = exec_ok(
            skopeo().arg("inspect").args(registry.flags()).arg(registry.docker_ref(&format!("team/hello:{tag}"))),
        );
        let value: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(value["Digest"], digest.as_str(), "{tag}");
    }
    // podman pulls it and runs it.
    let podman = Podman::new();
    podman.pull(&registry, "team/hello:1.0");
    let run = podman.run(&registry.image("team/hello:1.0"), &[]);
    run.assert_success("podman run");
    assert_eq!(run.stdout_text().trim_end(), HELLO_LINE);

    // The order: every blob before the manifest, the manifest by digest before the tags.
    let requests = registry.requests();
    let first_manifest = requests.iter().position(|r| r.method == "PUT" && r.path().contains("/manifests/")).unwrap();
    let last_blob = requests.iter().rposition(|r| r.method == "PUT" && r.path().contains("/blobs/uploads/")).unwrap();
    assert!(last_blob < first_manifest, "{requests:#?}");
    assert!(
        requests[first_manifest].path().ends_with(&format!("/manifests/{digest}")),
        "{:?}",
        requests[first_manifest]
    );

    // The second push of the same image uploads nothing: the manifest exists by digest.
    let before = registry.requests().len();
    let out = push(&[]);
    out.assert_success("second push");
    assert_eq!(digest_of(&pushed_lines(&out)[0]), digest, "builds are reproducible");
    let requests = registry.requests();
    let again = &requests[before..];
    let layers = 1;
    eprintln!("re-push requests: {again:#?}");
    assert_eq!(uploads(again), 0, "{again:#?}");
    assert!(again.len() <= layers + 3, "{} requests: {again:#?}", again.len());
}

#[test]
fn push_with_bearer_token_auth_and_stored_credentials_verbose_never_shows_the_secret() {
    let registry = TokenRegistry::start(USER, PASSWORD);
    let home = Home::new();
    fs::write(
        home.config(),
        serde_json::to_vec(
            &json!({"auths": {registry.addr(): {"auth": base64(format!("{USER}:{PASSWORD}").as_bytes())}}}),
        )
        .unwrap(),
    )
    .unwrap();
    let out = exec(home.zeroimage().arg("build").arg(home.hello()).args([
        "--verbose",
        "--push",
        &format!("{}/bear/hello:1", registry.addr()),
    ]));
    out.assert_success("push to a Bearer-auth registry");
    let stderr = out.stderr_text();
    assert!(stderr.contains(&format!("user {USER} from {}", home.config().display())), "{stderr}");
    assert!(!stderr.contains(PASSWORD) && !out.stdout_text().contains(PASSWORD), "{stderr}");
    let digest = digest_of(&pushed_lines(&out)[0]);
    let inspect = exec_ok(
        skopeo()
            .args(["inspect", "--tls-verify=false", "--creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("docker://{}/bear/hello:1", registry.addr())),
    );
    let value: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(value["Digest"], digest.as_str());
    let scopes: Vec<String> = registry.token_requests().into_iter().filter_map(|r| r.scope).collect();
    assert!(scopes.iter().any(|s| s == "repository:bear/hello:pull,push"), "{scopes:?}");
}
