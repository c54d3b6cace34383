//! Secrets and network rules (issue 17, items 11–15), against the real registry (Debian's
//! `docker-registry`) behind a fault-injecting proxy, with the real `zeroimage` binary:
//!
//! - `login` / `logout` never leave `config.json` readable by others, not even for a moment,
//!   and keep a stricter mode the user chose;
//! - a Bearer realm over plain HTTP on a non-loopback host gets no credentials without
//!   `--insecure`;
//! - a registry error body that echoes the `Authorization` header is printed redacted;
//! - a plain-HTTP loopback registry answering 500, or hanging, on `/v2/` is reported as
//!   such, not as the TLS attempt's "InvalidContentType";
//! - 429 `Retry-After` is waited out within `--timeout`, and said at `--verbose`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroimage_tests::oci::skopeo_inspect_with;
use zeroimage_tests::proxy::{Fault, FaultProxy};
use zeroimage_tests::{exec, scratch_dir, static_hello, zeroimage_cmd, OutputExt, Registry, RegistryOptions};

const USER: &str = "rules-user";
const PASSWORD: &str = "rules-Pa55word-x9";

/// `zeroimage ARGS…` with its own `DOCKER_CONFIG`.
fn zeroimage_in(docker_config: &Path, args: &[&str]) -> Output {
    exec(zeroimage_cmd().env("DOCKER_CONFIG", docker_config).args(args))
}

fn login(docker_config: &Path, registry: &str) -> Output {
    let mut child = zeroimage_cmd()
        .env("DOCKER_CONFIG", docker_config)
        .args(["login", registry, "-u", USER, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_never_leaves_config_json_readable_by_others() {
    let registry = RegistryOptions::default().auth(USER, PASSWORD).start();
    let dir = scratch_dir();
    let docker_config = dir.path().join("docker");
    fs::create_dir_all(&docker_config).unwrap();
    // Another user watching the directory: every file in it readable by group or others
    // (a temporary file too) is a leak.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, dir) = (stop.clone(), docker_config.clone());
        std::thread::spawn(move || {
            let mut leaks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for entry in fs::read_dir(&dir).unwrap().flatten() {
                    if let Ok(meta) = entry.metadata() {
                        if meta.permissions().mode() & 0o077 != 0 {
                            leaks.push(format!("{:?} {:o}", entry.file_name(), meta.permissions().mode() & 0o777));
                        }
                    }
                }
            }
            leaks
        })
    };
    for _ in 0..25 {
        login(&docker_config, registry.addr()).assert_success("login");
        zeroimage_in(&docker_config, &["logout", registry.addr()]).assert_success("logout");
    }
    login(&docker_config, registry.addr()).assert_success("login");
    stop.store(true, Ordering::Relaxed);
    let leaks = watcher.join().unwrap();
    assert!(
        leaks.is_empty(),
        "config.json readable by others {} times: {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(5)]
    );
    let config = docker_config.join("config.json");
    assert_eq!(mode(&config), 0o600);
    let stored: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    assert!(stored["auths"][registry.addr()]["auth"].is_string(), "{stored}");

    // A stricter mode the user chose is kept by login and logout.
    fs::set_permissions(&config, fs::Permissions::from_mode(0o400)).unwrap();
    login(&docker_config, registry.addr()).assert_success("login over a 0400 config.json");
    assert_eq!(mode(&config), 0o400);
    zeroimage_in(&docker_config, &["logout", registry.addr()]).assert_success("logout");
    assert_eq!(mode(&config), 0o400);
    let names: Vec<String> =
        fs::read_dir(&docker_config).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["config.json".to_string()], "no temporary file left");
}

/// `zeroimage build hello --push PROXY/REPO:1 ARGS…` (a fresh, empty DOCKER_CONFIG).
fn push(hello: &Path, docker_config: &Path, target: &str, extra: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut args = vec!["build", hello.to_str().unwrap(), "--push", target];
    args.extend_from_slice(extra);
    let out = zeroimage_in(docker_config, &args);
    (out, started.elapsed())
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = scratch_dir();
    let hello = static_hello(dir.path());
    let docker_config = dir.path().join("docker");
    fs::create_dir_all(&docker_config).unwrap();
    fs::write(docker_config.join("config.json"), "{}").unwrap();
    (dir, hello, docker_config)
}

#[test]
fn a_plain_http_token_realm_on_another_host_gets_no_credentials() {
    let registry = Registry::start();
    let (_dir, hello, docker_config) = setup();
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if req.target.starts_with("/v2/") {
            Fault::Answer(
                401,
                "WWW-Authenticate: Bearer realm=\"http://token.zeroimage-test.invalid/token\",service=\"s\"\r\n",
            )
        } else {
            Fault::Pass
        }
    });
    let creds = format!("{USER}:{PASSWORD}");
    let target = format!("{}/realm/app:1", proxy.addr());
    let (out, _) = push(&hello, &docker_config, &target, &["--creds", &creds, "--timeout", "5"]);
    out.assert_failure("a plain-http realm on a non-loopback host");
    let stderr = out.stderr_text();
    assert!(stderr.contains("token server http://token.zeroimage-test.invalid/token is not https"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    // With --insecure the realm is tried (and cannot be reached: the name does not resolve).
    let (out, _) = push(&hello, &docker_config, &target, &["--creds", &creds, "--timeout", "5", "--insecure"]);
    out.assert_failure("the realm does not exist");
    assert!(
        out.stderr_text().contains("cannot reach http://token.zeroimage-test.invalid/token"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn registry_error_bodies_echoing_credentials_are_redacted() {
    let registry = RegistryOptions::default().auth(USER, PASSWORD).start();
    let (_dir, hello, docker_config) = setup();
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if req.method == "PUT" && req.target.contains("/manifests/") {
            Fault::EchoAuthorization(400)
        } else {
            Fault::Pass
        }
    });
    let creds = format!("{USER}:{PASSWORD}");
    let (out, _) =
        push(&hello, &docker_config, &format!("{}/echo/app:1", proxy.addr()), &["--creds", &creds, "--verbose"]);
    out.assert_failure("a manifest PUT answered with the Authorization header echoed");
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    let basic = zeroimage_tests::registry::base64(format!("{USER}:{PASSWORD}").as_bytes());
    assert!(text.contains("DENIED") && text.contains("Authorization: Basic <redacted>"), "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains(&basic), "a secret was printed:\n{text}");
    let echoed =
        proxy.seen().into_iter().any(|(req, _)| req.authorization.as_deref() == Some(&format!("Basic {basic}")));
    assert!(echoed, "the proxy saw the credentials, so the body did carry them");
}

#[test]
fn a_plain_http_registry_failing_on_v2_is_reported_as_such() {
    let registry = Registry::start();
    let (_dir, hello, docker_config) = setup();
    let failing = FaultProxy::start(registry.addr(), |_| Fault::Status(500));
    let (out, _) = push(&hello, &docker_config, &format!("{}/broken/app:1", failing.addr()), &["--timeout", "5"]);
    out.assert_failure("a registry answering 500");
    let stderr = out.stderr_text();
    assert!(stderr.contains(&format!("answered 500 to GET http://{}/v2/", failing.addr())), "{stderr}");
    assert!(!stderr.contains("InvalidContentType") && !stderr.contains("corrupt message"), "{stderr}");

    let hanging = FaultProxy::start(registry.addr(), |_| Fault::Stall);
    let (out, elapsed) = push(&hello, &docker_config, &format!("{}/hang/app:1", hanging.addr()), &["--timeout", "2"]);
    out.assert_failure("a registry that never answers");
    let stderr = out.stderr_text();
    assert!(stderr.contains(&format!("cannot reach http://{}/v2/", hanging.addr())), "{stderr}");
    assert!(stderr.to_ascii_lowercase().contains("timeout") || stderr.contains("timed out"), "{stderr}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

#[test]
fn rate_limits_are_waited_out_within_the_timeout() {
    let registry = Registry::start();
    let (_dir, hello, docker_config) = setup();
    let manifests = Arc::new(AtomicUsize::new(0));
    let seen = manifests.clone();
    let proxy = FaultProxy::start(registry.addr(), move |req| {
        if req.method == "PUT" && req.target.contains("/manifests/") && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Fault::Answer(429, "Retry-After: 2\r\n")
        } else {
            Fault::Pass
        }
    });
    let target = format!("{}/limited/app:1", proxy.addr());
    let (out, elapsed) = push(&hello, &docker_config, &target, &["--verbose", "--timeout", "10"]);
    out.assert_success("a push rate-limited once");
    assert!(elapsed >= Duration::from_secs(2), "did not wait: {elapsed:?}");
    let stderr = out.stderr_text();
    assert!(stderr.contains("(429): waiting 2 s as its Retry-After asks"), "{stderr}");
    assert!(manifests.load(Ordering::SeqCst) >= 2, "the manifest was not sent again");
    let inspected = skopeo_inspect_with(&registry.flags(), &format!("docker://{}/limited/app:1", registry.addr()));
    assert_eq!(inspected["Os"], "linux");

    // A wait beyond the budget is not waited: the error says so.
    let long = FaultProxy::start(registry.addr(), |req| {
        if req.method == "PUT" && req.target.contains("/manifests/") {
            Fault::Answer(429, "Retry-After: 3600\r\n")
        } else {
            Fault::Pass
        }
    });
    let (out, elapsed) = push(&hello, &docker_config, &format!("{}/limited/app:2", long.addr()), &["--timeout", "5"]);
    out.assert_failure("a rate limit beyond --timeout");
    assert!(out.stderr_text().contains("retry after 3600 s, beyond the 5 s --timeout"), "{}", out.stderr_text());
    assert!(elapsed < Duration::from_secs(60), "waited {elapsed:?}");
    let _ = Command::new("true");
}
