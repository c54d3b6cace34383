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
use zeroimage_tests::token::{identity_token, TokenRegistry};
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

/// The manifest digest skopeo reads for `reference` (`docker://…`), signing in as USER.
fn digest_with_creds(reference: &str) -> String {
    let inspect = exec_ok(
        skopeo().args(["inspect", "--tls-verify=false", "--creds", &format!("{USER}:{PASSWORD}")]).arg(reference),
    );
    let value: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    value["Digest"].as_str().unwrap_or_default().to_string()
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
    assert_eq!(digest_with_creds(&format!("docker://{}/bear/hello:1", registry.addr())), digest);
    let scopes: Vec<String> = registry.token_requests().into_iter().filter_map(|r| r.scope).collect();
    assert!(scopes.iter().any(|s| s == "repository:bear/hello:pull,push"), "{scopes:?}");
}

#[test]
fn push_with_an_identity_token_exchanges_it_at_the_token_server() {
    // `docker login` to an OAuth registry stores an identity (refresh) token, not a password:
    // it is exchanged with an OAuth2 POST (grant_type=refresh_token) for access tokens.
    let registry = TokenRegistry::start(USER, PASSWORD);
    let token = identity_token(PASSWORD);
    let home = Home::new();
    let config = |token: &str| {
        let value = json!({"auths": {registry.addr(): {"auth": "", "identitytoken": token}}});
        fs::write(home.config(), serde_json::to_vec(&value).unwrap()).unwrap();
    };
    config(&token);
    let out = exec(home.zeroimage().arg("build").arg(home.hello()).args([
        "--verbose",
        "--push",
        &format!("{}/oauth/hello:1", registry.addr()),
    ]));
    out.assert_success("push with an identity token");
    let stderr = out.stderr_text();
    assert!(stderr.contains(&format!("an identity token from {}", home.config().display())), "{stderr}");
    assert!(!stderr.contains(&token) && !out.stdout_text().contains(&token), "{stderr}");
    let requests = registry.token_requests();
    let exchanged = requests.iter().filter(|r| r.method == "POST" && r.grant.as_deref() == Some("refresh_token"));
    assert!(exchanged.clone().count() > 0, "{requests:#?}");
    assert!(exchanged.clone().all(|r| r.status == 200 && r.user.as_deref() == Some(USER)), "{requests:#?}");
    assert!(exchanged.clone().any(|r| r.scope.as_deref() == Some("repository:oauth/hello:pull,push")), "{requests:#?}");
    let digest = digest_of(&pushed_lines(&out)[0]);
    assert_eq!(digest_with_creds(&format!("docker://{}/oauth/hello:1", registry.addr())), digest);

    // A revoked (wrong) identity token: one clear authentication error, the token not shown.
    let revoked = identity_token("revoked");
    config(&revoked);
    let failed = exec(
        home.zeroimage().arg("build").arg(home.hello()).args(["--push", &format!("{}/oauth/hello:2", registry.addr())]),
    );
    failed.assert_failure("push with a revoked identity token");
    let stderr = failed.stderr_text();
    assert!(stderr.contains(registry.addr()) && stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains(&revoked), "{stderr}");
}

#[test]
fn a_base_from_the_same_registry_is_mounted_not_uploaded() {
    let registry = Registry::start();
    let home = Home::new();
    let base_tar = home.path().join("static.tar");
    exec(home.zeroimage().args(["base", "builtin:static", "-o"]).arg(&base_tar)).assert_success("zeroimage base");
    exec_ok(
        skopeo()
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci-archive:{}", base_tar.display()))
            .arg(registry.docker_ref("base/static:1")),
    );
    let inspect = |name: &str| -> Value {
        let out = exec_ok(skopeo().args(["inspect", "--tls-verify=false"]).arg(registry.docker_ref(name)));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let base = inspect("base/static:1");
    let base_layers: Vec<String> =
        base["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
    let before = registry.requests().len();
    let out = exec(home.zeroimage().arg("build").arg(home.hello()).args([
        "--verbose",
        "--from",
        &registry.docker_ref("base/static:1"),
        "--push",
        &registry.image("app/hello:1"),
    ]));
    out.assert_success("push on a same-registry base");
    let requests = registry.requests();
    let push = &requests[before..];
    for layer in &base_layers {
        let mount = push.iter().find(|r| r.method == "POST" && r.uri.contains(&format!("mount={layer}")));
        let mount = mount.unwrap_or_else(|| panic!("no mount of {layer}: {push:#?}"));
        assert!(mount.uri.contains("from=base/static"), "{mount:?}");
        assert_eq!(mount.status, 201, "{mount:?}");
        assert!(!push.iter().any(|r| r.method == "PUT" && r.uri.contains(&format!("digest={layer}"))), "{push:#?}");
        assert!(
            !push.iter().any(|r| r.method == "GET" && r.uri.ends_with(&format!("/blobs/{layer}"))),
            "base layer read: {push:#?}"
        );
    }
    assert!(out.stderr_text().contains("mounted from base/static"), "{}", out.stderr_text());
    let pushed = inspect("app/hello:1");
    assert_eq!(pushed["Layers"].as_array().unwrap().len(), base_layers.len() + 1);
    assert_manifests_complete(&registry);
}

/// Every manifest in the registry has all its blobs.
fn assert_manifests_complete(registry: &Registry) {
    let catalog: Value = serde_json::from_slice(&registry.get("/v2/_catalog").body).unwrap();
    for repo in catalog["repositories"].as_array().into_iter().flatten() {
        let repo = repo.as_str().unwrap();
        let tags: Value = serde_json::from_slice(&registry.get(&format!("/v2/{repo}/tags/list")).body).unwrap();
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let accept =
                "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
            let manifest = registry.request(
                "GET",
                &format!("/v2/{repo}/manifests/{}", tag.as_str().unwrap()),
                &[("Accept", accept)],
                true,
            );
            let manifest: Value = serde_json::from_slice(&manifest.body).unwrap();
            let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
            digests.extend(
                manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()),
            );
            for digest in digests {
                let head = registry.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], true);
                assert_eq!(head.status, 200, "{repo}:{tag} references {digest}, which is missing");
            }
        }
    }
}

/// `ZEROIMAGE_PUSH_CHUNK_SIZE` for the fault tests: the hello layer goes up in several chunks.
const CHUNK: &str = "65536";

#[test]
fn faults_are_retried_and_resumed_or_fail_without_a_manifest() {
    let registry = Registry::start();
    let home = Home::new();
    let hello = home.hello();
    let push_via = |proxy: &FaultProxy, repo: &str, timeout: &str| -> Output {
        exec(home.zeroimage().env("ZEROIMAGE_PUSH_CHUNK_SIZE", CHUNK).arg("build").arg(&hello).args([
            "--verbose",
            "--timeout",
            timeout,
            "--push",
            &format!("{}/{repo}:1", proxy.addr()),
        ]))
    };

    // 1. Transient faults: a 503 on a HEAD, a 500 on the first chunk, a connection dropped
    // in the middle of the third chunk, a dropped whole-blob PUT, a 502 on the manifest.
    let counts: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
    let c = counts.clone();
    let proxy = FaultProxy::start(registry.addr(), move |req| {
        let n = |i: usize| c[i].fetch_add(1, Ordering::SeqCst);
        match req.method.as_str() {
            "HEAD" if req.target.contains("/blobs/") && n(0) == 0 => Fault::Status(503),
            "PATCH" => match n(1) {
                0 => Fault::Status(500),
                2 => Fault::DropAfter(20_000),
                _ => Fault::Pass,
            },
            "PUT" if req.target.contains("/blobs/uploads/") && req.content_length > 0 && n(2) == 0 => {
                Fault::DropAfter(100)
            }
            "PUT" if req.target.contains("/manifests/") && n(3) == 0 => Fault::Status(502),
            _ => Fault::Pass,
        }
    });
    let out = push_via(&proxy, "faults/recover", "10");
    out.assert_success("push through transient faults");
    let stderr = out.stderr_text();
    eprintln!("{stderr}");
    let seen = proxy.seen();
    let injected: Vec<String> = seen
        .iter()
        .filter(|(_, f)| *f != Fault::Pass)
        .map(|(r, f)| format!("{} {} -> {f:?}", r.method, r.target))
        .collect();
    eprintln!("injected: {injected:#?}");
    assert!(injected.len() >= 5, "every fault was hit: {injected:#?}");
    assert!(seen.iter().filter(|(r, _)| r.method == "PATCH").count() > 3, "the layer went in chunks");
    // The image is whole: skopeo copies it out, checking every digest.
    let layout = home.path().join("copied");
    exec_ok(
        skopeo()
            .args(["copy", "--src-tls-verify=false"])
            .arg(registry.docker_ref("faults/recover:1"))
            .arg(format!("oci:{}:x", layout.display())),
    );

    // 2. A registry that refuses chunks gets the blob whole.
    let proxy =
        FaultProxy::start(registry.addr(), |req| if req.method == "PATCH" { Fault::Status(405) } else { Fault::Pass });
    let out = push_via(&proxy, "faults/nochunks", "10");
    out.assert_success("push where chunks are refused");
    assert!(out.stderr_text().contains("chunked upload refused"), "{}", out.stderr_text());
    exec_ok(skopeo().args(["inspect", "--tls-verify=false"]).arg(registry.docker_ref("faults/nochunks:1")));

    // 3. Uploads that stall: the push fails after bounded retries, with a clear error.
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if req.target.contains("/blobs/uploads/") && matches!(req.method.as_str(), "PATCH" | "PUT") {
            Fault::Stall
        } else {
            Fault::Pass
        }
    });
    let started = std::time::Instant::now();
    let out = push_via(&proxy, "faults/stall", "2");
    out.assert_failure("push through a stalling proxy");
    eprintln!("stall: {:?}: {}", started.elapsed(), out.stderr_text());
    assert!(out.stderr_text().contains("error: cannot reach http://"), "{}", out.stderr_text());
    assert!(started.elapsed() < std::time::Duration::from_secs(90));

    // 4. A registry failing every whole-blob PUT with 500: the push fails and says so.
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if req.method == "PUT" && req.target.contains("/blobs/uploads/") {
            Fault::Status(500)
        } else {
            Fault::Pass
        }
    });
    let out = push_via(&proxy, "faults/fivehundred", "10");
    out.assert_failure("push against a failing registry");
    assert!(out.stderr_text().contains("answered 500 to PUT"), "{}", out.stderr_text());

    // Neither failed push left a manifest; every manifest there has its blobs.
    for repo in ["faults/stall", "faults/fivehundred"] {
        let got = registry.request("GET", &format!("/v2/{repo}/manifests/1"), &[], true);
        assert_eq!(got.status, 404, "{repo}");
    }
    assert_manifests_complete(&registry);
}

/// A credential helper speaking Docker's protocol, keeping credentials in `$HOME/NAME.json`
/// and logging each call (`get SERVER`) to `$HOME/NAME.log`.
fn install_helper(home: &Home, name: &str) {
    let script = format!(
        r#"#!/usr/bin/env python3
import json, os, sys
store = os.path.join(os.environ["HOME"], "{name}.json")
data = json.load(open(store)) if os.path.exists(store) else {{}}
action = sys.argv[1]
payload = sys.stdin.read()
server = json.loads(payload)["ServerURL"] if action == "store" else payload.strip()
open(os.path.join(os.environ["HOME"], "{name}.log"), "a").write(action + " " + server + "\n")
if action == "get":
    if server not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, "Username": data[server][0], "Secret": data[server][1]}}))
elif action == "store":
    entry = json.loads(payload)
    data[server] = [entry["Username"], entry["Secret"]]
    json.dump(data, open(store, "w"))
elif action == "erase":
    data.pop(server, None)
    json.dump(data, open(store, "w"))
"#
    );
    let path = home.bin().join(format!("docker-credential-{name}"));
    fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn login(home: &Home, registry: &Registry, password: &str) -> Output {
    use std::io::Write;
    let mut child = home
        .zeroimage()
        .args(["login", registry.addr(), "-u", USER, "--password-stdin", "--ca-cert"])
        .arg(registry.ca_cert().unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn login_logout_round_trip_and_credential_helpers() {
    let registry = RegistryOptions::default().auth(USER, PASSWORD).tls().start();
    let home = Home::new();
    let hello = home.hello();
    let push = |tag: &str, verbose: bool| -> Output {
        let mut cmd = home.zeroimage();
        cmd.arg("build")
            .arg(&hello)
            .arg("--ca-cert")
            .arg(registry.ca_cert().unwrap())
            .args(["--push", &registry.image(&format!("creds/hello:{tag}"))]);
        if verbose {
            cmd.arg("--verbose");
        }
        exec(&mut cmd)
    };
    let original = json!({"psFormat": "table {{.ID}}", "auths": {"other.example.com": {"auth": "b3RoZXI6c2VjcmV0"}}});
    let original_bytes = serde_json::to_vec_pretty(&original).unwrap();
    fs::write(home.config(), &original_bytes).unwrap();

    // Without credentials the registry refuses.
    let out = push("anon", false);
    out.assert_failure("push without credentials");
    assert!(out.stderr_text().contains("refused access"), "{}", out.stderr_text());

    // A wrong password is refused and nothing is written.
    let out = login(&home, &registry, "wrong-password");
    out.assert_failure("login with a wrong password");
    assert!(out.stderr_text().contains("refused access"), "{}", out.stderr_text());
    assert_eq!(fs::read(home.config()).unwrap(), original_bytes, "config.json untouched");

    // The right one is stored in auths, 0600, every other key kept.
    let out = login(&home, &registry, PASSWORD);
    out.assert_success("login");
    assert_eq!(out.stdout_text().trim(), "Login Succeeded");
    let config: Value = serde_json::from_slice(&fs::read(home.config()).unwrap()).unwrap();
    assert_eq!(config["auths"][registry.addr()]["auth"], base64(format!("{USER}:{PASSWORD}").as_bytes()).as_str());
    assert_eq!(config["psFormat"], original["psFormat"]);
    assert_eq!(config["auths"]["other.example.com"], original["auths"]["other.example.com"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(home.config()).unwrap().permissions().mode() & 0o777, 0o600);

    // A push now finds them, and --verbose says where, never the secret.
    let out = push("stored", true);
    out.assert_success("push with stored credentials");
    assert!(
        out.stderr_text().contains(&format!("user {USER} from {} (auths)", home.config().display())),
        "{}",
        out.stderr_text()
    );
    assert!(!out.stderr_text().contains(PASSWORD) && !out.stdout_text().contains(PASSWORD));

    // -p works too, with docker's warning.
    let out = exec(
        home.zeroimage()
            .args(["login", registry.addr(), "-u", USER, "-p", PASSWORD, "--ca-cert"])
            .arg(registry.ca_cert().unwrap()),
    );
    out.assert_success("login -p");
    assert!(out.stderr_text().contains("WARNING! Using --password via the CLI is insecure"), "{}", out.stderr_text());

    // logout erases them, keeps the rest.
    let out = exec(home.zeroimage().args(["logout", registry.addr()]));
    out.assert_success("logout");
    let config: Value = serde_json::from_slice(&fs::read(home.config()).unwrap()).unwrap();
    assert!(config["auths"].get(registry.addr()).is_none(), "{config}");
    assert_eq!(config["psFormat"], original["psFormat"]);
    assert_eq!(config["auths"]["other.example.com"], original["auths"]["other.example.com"]);
    push("after-logout", false).assert_failure("push after logout");

    // credsStore: login stores through the helper (not in auths), push gets them from it.
    install_helper(&home, "ztest");
    install_helper(&home, "zother");
    fs::write(home.config(), serde_json::to_vec(&json!({"credsStore": "ztest", "psFormat": "x"})).unwrap()).unwrap();
    login(&home, &registry, PASSWORD).assert_success("login through credsStore");
    let config: Value = serde_json::from_slice(&fs::read(home.config()).unwrap()).unwrap();
    assert!(config.get("auths").is_none_or(|a| a.get(registry.addr()).is_none()), "{config}");
    let out = push("helper", true);
    out.assert_success("push with credsStore credentials");
    assert!(out.stderr_text().contains("credential helper docker-credential-ztest"), "{}", out.stderr_text());
    assert!(!out.stderr_text().contains(PASSWORD));
    let log = fs::read_to_string(home.path().join("ztest.log")).unwrap();
    assert!(
        log.contains(&format!("store {}", registry.addr())) && log.contains(&format!("get {}", registry.addr())),
        "{log}"
    );

    // credHelpers wins over credsStore for its registry.
    fs::copy(home.path().join("ztest.json"), home.path().join("zother.json")).unwrap();
    fs::write(
        home.config(),
        serde_json::to_vec(&json!({"credsStore": "missing-default", "credHelpers": {registry.addr(): "zother"}}))
            .unwrap(),
    )
    .unwrap();
    let out = push("credhelpers", true);
    out.assert_success("push with credHelpers routing");
    assert!(out.stderr_text().contains("docker-credential-zother"), "{}", out.stderr_text());

    // A configured helper that is missing is an error naming it, not an anonymous attempt.
    fs::write(home.config(), serde_json::to_vec(&json!({"credsStore": "nope"})).unwrap()).unwrap();
    let out = push("missing", false);
    out.assert_failure("push with a missing helper");
    assert!(out.stderr_text().contains("docker-credential-nope"), "{}", out.stderr_text());

    // logout through the helper erases there.
    fs::write(home.config(), serde_json::to_vec(&json!({"credsStore": "ztest"})).unwrap()).unwrap();
    exec(home.zeroimage().args(["logout", registry.addr()])).assert_success("logout through credsStore");
    let store: Value = serde_json::from_slice(&fs::read(home.path().join("ztest.json")).unwrap()).unwrap();
    assert!(store.get(registry.addr()).is_none(), "{store}");
}

#[test]
fn login_to_a_bearer_registry_checks_a_token() {
    let registry = TokenRegistry::start(USER, PASSWORD);
    let home = Home::new();
    let out = exec(home.zeroimage().args(["login", registry.addr(), "-u", USER, "-p", "bad"]));
    out.assert_failure("login with a wrong password (Bearer)");
    assert!(!home.config().exists(), "nothing written");
    let out = exec(home.zeroimage().args(["login", registry.addr(), "-u", USER, "-p", PASSWORD]));
    out.assert_success("login (Bearer)");
    assert!(registry.token_requests().iter().any(|r| r.user.as_deref() == Some(USER) && r.status == 200));
    let out = exec(
        home.zeroimage().arg("build").arg(home.hello()).args(["--push", &format!("{}/bear/login:1", registry.addr())]),
    );
    out.assert_success("push after login (Bearer)");
}

#[test]
fn ssl_cert_file_trusts_a_private_ca_like_ca_cert() {
    let registry = RegistryOptions::default().auth(USER, PASSWORD).tls().start();
    let home = Home::new();
    let hello = home.hello();
    let ca = registry.ca_cert().unwrap();
    let push = |ssl_cert_file: Option<&Path>| -> Output {
        let mut cmd = home.zeroimage();
        cmd.env_remove("SSL_CERT_FILE");
        if let Some(file) = ssl_cert_file {
            cmd.env("SSL_CERT_FILE", file);
        }
        exec(
            cmd.arg("build")
                .arg(&hello)
                .args(["--creds", &format!("{USER}:{PASSWORD}")])
                .args(["--push", &registry.image("ssl/hello:1")]),
        )
    };
    zeroimage_tests::zeroimage_bin(); // built before the clock starts
    let started = std::time::Instant::now();
    let refused = push(None);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "an untrusted certificate is not retried");
    assert!(refused.stderr_text().contains("--ca-cert"), "{}", refused.stderr_text());
    assert_eq!(refused.status.code(), Some(1), "an unknown CA is refused: {}", refused.stdout_text());
    let out = push(Some(ca));
    out.assert_success("push trusting $SSL_CERT_FILE");
    let digest = digest_of(&pushed_lines(&out)[0]);
    let flags = registry.flags();
    let inspect =
        zeroimage_tests::oci::skopeo_inspect_with(&flags, &format!("docker://{}", registry.image("ssl/hello:1")));
    assert_eq!(inspect["Digest"].as_str(), Some(digest.as_str()));
}
