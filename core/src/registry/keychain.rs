//! Where registry credentials live, as Docker, podman and crane users already keep them:
//!
//! 1. `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): a per-registry
//!    `credHelpers` entry, else the `credsStore` default, run through the credential-helper
//!    protocol (`docker-credential-NAME get|store|erase`, JSON on stdin/stdout); else `auths`
//!    (base64 `auth`, or `identitytoken`);
//! 2. `$REGISTRY_AUTH_FILE`;
//! 3. podman's `${XDG_RUNTIME_DIR}/containers/auth.json`.
//!
//! Docker Hub's key is `https://index.docker.io/v1/`. Secrets never appear in errors, logs
//! or `Debug` output.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The key Docker uses for Docker Hub in its config and with credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and secret found in (or for) a credential store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The user name; `<token>` when the secret is an identity token.
    pub username: String,
    /// The password, access token or identity token.
    pub secret: String,
}

impl StoredCredential {
    /// Whether the secret is an OAuth2 identity (refresh) token rather than a password.
    pub fn is_identity_token(&self) -> bool {
        self.username == "<token>"
    }
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential").field("username", &self.username).field("secret", &"<redacted>").finish()
    }
}

/// Which store supplied (or received) credentials: said at `--verbose`, never with the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `auths` in a Docker `config.json`.
    DockerConfig(PathBuf),
    /// A `docker-credential-NAME` helper.
    Helper(String),
    /// `$REGISTRY_AUTH_FILE`.
    RegistryAuthFile(PathBuf),
    /// podman's `auth.json`.
    PodmanAuthFile(PathBuf),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::DockerConfig(path) => write!(f, "{} (auths)", path.display()),
            CredentialSource::Helper(name) => write!(f, "credential helper docker-credential-{name}"),
            CredentialSource::RegistryAuthFile(path) => write!(f, "$REGISTRY_AUTH_FILE {}", path.display()),
            CredentialSource::PodmanAuthFile(path) => write!(f, "podman auth file {}", path.display()),
        }
    }
}

/// The credential stores of this user, located from the environment.
#[derive(Debug, Clone)]
pub struct Keychain {
    docker_config: PathBuf,
    registry_auth_file: Option<PathBuf>,
    podman_auth_file: Option<PathBuf>,
}

impl Keychain {
    /// The stores named by `$DOCKER_CONFIG`, `$HOME`, `$REGISTRY_AUTH_FILE` and `$XDG_RUNTIME_DIR`.
    pub fn from_env() -> Keychain {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let docker_dir = var("DOCKER_CONFIG")
            .or_else(|| var("HOME").map(|home| home.join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Keychain {
            docker_config: docker_dir.join("config.json"),
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            podman_auth_file: var("XDG_RUNTIME_DIR").map(|dir| dir.join("containers").join("auth.json")),
        }
    }

    /// A keychain over explicit files (tests, embedding).
    pub fn with_files(
        docker_config: PathBuf,
        registry_auth_file: Option<PathBuf>,
        podman_auth_file: Option<PathBuf>,
    ) -> Self {
        Keychain { docker_config, registry_auth_file, podman_auth_file }
    }

    /// The Docker `config.json` this keychain reads and writes.
    pub fn docker_config_path(&self) -> &Path {
        &self.docker_config
    }

    /// Credentials for `registry` (`docker.io`, `registry.example.com:5000`), and where they
    /// came from; `None` when no store has any.
    pub fn get(&self, registry: &str) -> Result<Option<(StoredCredential, CredentialSource)>> {
        let config = read_json(&self.docker_config)?;
        if let Some(helper) = helper_for(&config, registry) {
            let found = run_helper(&helper, "get", &server_url(registry))?;
            return Ok(found.map(|c| (c, CredentialSource::Helper(helper))));
        }
        if let Some(found) = from_auths(&config, registry, &self.docker_config)? {
            return Ok(Some((found, CredentialSource::DockerConfig(self.docker_config.clone()))));
        }
        for (path, source) in [
            (&self.registry_auth_file, CredentialSource::RegistryAuthFile as fn(PathBuf) -> CredentialSource),
            (&self.podman_auth_file, CredentialSource::PodmanAuthFile),
        ] {
            if let Some(path) = path {
                if let Some(found) = from_auths(&read_json(path)?, registry, path)? {
                    return Ok(Some((found, source(path.clone()))));
                }
            }
        }
        Ok(None)
    }

    /// Store credentials for `registry` where Docker would: its configured helper, else
    /// `auths` in `config.json` (rewritten atomically, every other key kept).
    pub fn store(&self, registry: &str, credential: &StoredCredential) -> Result<CredentialSource> {
        let mut config = read_json(&self.docker_config)?;
        if let Some(helper) = helper_for(&config, registry) {
            let payload = json!({"ServerURL": server_url(registry), "Username": credential.username, "Secret": credential.secret});
            run_helper(&helper, "store", &payload.to_string())?;
            return Ok(CredentialSource::Helper(helper));
        }
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", credential.username, credential.secret));
        let root = as_object(&mut config, &self.docker_config)?;
        let auths = root.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        let auths = auths.as_object_mut().expect("made an object above");
        let key = existing_key(auths, registry).unwrap_or_else(|| config_key(registry));
        auths.insert(key, json!({ "auth": auth }));
        self.write_config(&config)?;
        Ok(CredentialSource::DockerConfig(self.docker_config.clone()))
    }

    /// Erase credentials for `registry` from its helper and from `auths`. Whether any existed.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let mut config = read_json(&self.docker_config)?;
        let mut erased = false;
        if let Some(helper) = helper_for(&config, registry) {
            erased |= run_helper(&helper, "erase", &server_url(registry))?.is_some();
        }
        let root = as_object(&mut config, &self.docker_config)?;
        if let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) {
            let keys: Vec<String> = auths.keys().filter(|k| hostname(k) == registry_host(registry)).cloned().collect();
            for key in keys {
                auths.remove(&key);
                erased = true;
            }
            self.write_config(&config)?;
        }
        Ok(erased)
    }

    /// Replace `config.json` atomically. The temporary file is created 0600 before a byte is
    /// written (and stays stricter when the old file was), so no other user can ever read the
    /// secrets, not even for a moment.
    fn write_config(&self, config: &Value) -> Result<()> {
        let path = &self.docker_config;
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
                dir.to_path_buf()
            }
            None => PathBuf::from("."),
        };
        let mut bytes = serde_json::to_vec_pretty(config).expect("JSON serialises");
        bytes.push(b'\n');
        let mut builder = tempfile::Builder::new();
        builder.prefix(".config.json.").suffix(".zeroimage-tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let existing = std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777);
            builder.permissions(std::fs::Permissions::from_mode(existing.map_or(0o600, |mode| mode & 0o600)));
        }
        let mut temp = builder.tempfile_in(&dir).map_err(|e| Error::io("create a temporary file in", &dir, e))?;
        temp.write_all(&bytes).map_err(|e| Error::io("write", temp.path(), e))?;
        temp.as_file().sync_all().map_err(|e| Error::io("sync", temp.path(), e))?;
        temp.persist(path).map_err(|e| Error::io("rename a temporary file to", path, e.error))?;
        Ok(())
    }
}

/// Docker Hub's config key for `docker.io`, else the registry as written.
fn config_key(registry: &str) -> String {
    if registry_host(registry) == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// The server URL a credential helper is asked about.
fn server_url(registry: &str) -> String {
    config_key(registry)
}

fn registry_host(registry: &str) -> String {
    hostname(registry)
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://reg:5000/x` → `reg:5000`.
fn hostname(key: &str) -> String {
    let host = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_ascii_lowercase(),
    }
}

fn existing_key(auths: &Map<String, Value>, registry: &str) -> Option<String> {
    auths.keys().find(|k| hostname(k) == registry_host(registry)).cloned()
}

fn helper_for(config: &Value, registry: &str) -> Option<String> {
    let host = registry_host(registry);
    let per_registry = config["credHelpers"]
        .as_object()
        .and_then(|helpers| helpers.iter().find(|(k, _)| hostname(k) == host))
        .and_then(|(_, v)| v.as_str());
    per_registry.or_else(|| config["credsStore"].as_str()).filter(|h| !h.is_empty()).map(str::to_string)
}

fn from_auths(config: &Value, registry: &str, path: &Path) -> Result<Option<StoredCredential>> {
    let Some(auths) = config["auths"].as_object() else { return Ok(None) };
    let host = registry_host(registry);
    let Some((_, entry)) = auths.iter().find(|(k, _)| hostname(k) == host) else { return Ok(None) };
    if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(StoredCredential { username: "<token>".into(), secret: token.to_string() }));
    }
    let malformed = || Error::InvalidOption {
        option: "credentials file",
        value: path.display().to_string(),
        reason: format!("the auth entry for {registry} is not base64 of user:password"),
    };
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (username, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        return Ok(Some(StoredCredential { username: username.into(), secret: secret.into() }));
    }
    match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(u), Some(p)) => Ok(Some(StoredCredential { username: u.into(), secret: p.into() })),
        _ => Ok(None),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(bytes) => parse_json(&bytes, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn parse_json(bytes: &[u8], path: &Path) -> Result<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidOption {
        option: "credentials file",
        value: path.display().to_string(),
        reason: format!("it is not valid JSON ({e})"),
    })
}

fn as_object<'v>(config: &'v mut Value, path: &Path) -> Result<&'v mut Map<String, Value>> {
    config.as_object_mut().ok_or_else(|| Error::InvalidOption {
        option: "credentials file",
        value: path.display().to_string(),
        reason: "it is not a JSON object".into(),
    })
}

/// Run `docker-credential-NAME ACTION` with `input` on stdin. For `get` and `erase`,
/// "not found" answers are `Ok(None)`; for `get` the answer is parsed.
fn run_helper(name: &str, action: &str, input: &str) -> Result<Option<StoredCredential>> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::CredentialHelper {
            helper: program.clone(),
            reason: if source.kind() == std::io::ErrorKind::NotFound {
                "it is configured in the Docker config but not installed (not on PATH)".into()
            } else {
                format!("it could not be started: {source}")
            },
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit before reading; its exit status tells.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::CredentialHelper {
        helper: program.clone(),
        reason: format!("waiting for it failed: {e}"),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let message = format!("{}{}", stdout.trim(), String::from_utf8_lossy(&out.stderr).trim());
        if message.to_ascii_lowercase().contains("not found") && action != "store" {
            return Ok(None);
        }
        // What the helper said may quote what it was given (the secret, for `store`).
        return Err(Error::CredentialHelper {
            helper: program,
            reason: format!(
                "`{action}` failed ({}): {}",
                out.status,
                crate::redact::redact(first_line(&message), &[secret_of(input).as_deref().unwrap_or("")])
            ),
        });
    }
    if action != "get" {
        return Ok(Some(StoredCredential { username: String::new(), secret: String::new() }));
    }
    parse_get_answer(&program, &stdout)
}

/// A helper's answer to `get` (`{"Username": …, "Secret": …}`); `None` without a secret.
pub(crate) fn parse_get_answer(program: &str, stdout: &str) -> Result<Option<StoredCredential>> {
    let value: Value = serde_json::from_str(stdout).map_err(|_| Error::CredentialHelper {
        helper: program.to_string(),
        reason: "`get` did not answer with JSON".into(),
    })?;
    match (value["Username"].as_str(), value["Secret"].as_str()) {
        (Some(username), Some(secret)) if !secret.is_empty() => {
            Ok(Some(StoredCredential { username: username.into(), secret: secret.into() }))
        }
        _ => Ok(None),
    }
}

/// What a config file (`config.json`, `auth.json`) holds for `registry`: the helper it
/// names, and the credentials in `auths` (no helper is run). For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_config_for(
    bytes: &[u8],
    path: &Path,
    registry: &str,
) -> Result<(Option<String>, Option<StoredCredential>)> {
    let config = parse_json(bytes, path)?;
    Ok((helper_for(&config, registry), from_auths(&config, registry, path)?))
}

/// The `Secret` of a helper's `store` input, when it is one.
fn secret_of(input: &str) -> Option<String> {
    serde_json::from_str::<Value>(input).ok().and_then(|v| v["Secret"].as_str().map(str::to_string))
}

/// The first line of a helper's message, so a chatty helper cannot spill anything else.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keychain(dir: &Path) -> Keychain {
        Keychain::with_files(dir.join("docker/config.json"), None, None)
    }

    #[test]
    fn store_get_erase_round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let kc = keychain(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(kc.docker_config_path(), r#"{"psFormat":"table","auths":{"other.io":{"auth":"eDp5"}}}"#)
            .unwrap();
        let cred = StoredCredential { username: "me".into(), secret: "s3cr:et".into() };
        assert_eq!(
            kc.store("reg.example.com:5000", &cred).unwrap(),
            CredentialSource::DockerConfig(kc.docker_config.clone())
        );
        let (found, _) = kc.get("reg.example.com:5000").unwrap().unwrap();
        assert_eq!(found, cred);
        let config: Value = serde_json::from_slice(&std::fs::read(kc.docker_config_path()).unwrap()).unwrap();
        assert_eq!(config["psFormat"], json!("table"));
        assert_eq!(config["auths"]["other.io"]["auth"], json!("eDp5"));
        assert!(kc.erase("reg.example.com:5000").unwrap());
        assert!(kc.get("reg.example.com:5000").unwrap().is_none());
        assert!(kc.get("other.io").unwrap().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn config_json_is_never_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let kc = keychain(dir.path());
        let docker_dir = dir.path().join("docker");
        std::fs::create_dir_all(&docker_dir).unwrap();
        // Another user watching the directory: any file in it readable by group or others
        // (the temporary file included) is a leak.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let watcher = {
            let stop = stop.clone();
            let docker_dir = docker_dir.clone();
            std::thread::spawn(move || {
                let mut leaks = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for entry in std::fs::read_dir(&docker_dir).unwrap().flatten() {
                        if let Ok(meta) = entry.metadata() {
                            if meta.permissions().mode() & 0o077 != 0 {
                                leaks.push(format!("{:?} {:o}", entry.file_name(), meta.permissions().mode()));
                            }
                        }
                    }
                }
                leaks
            })
        };
        for i in 0..300 {
            let cred = StoredCredential { username: "me".into(), secret: format!("secret-{i}") };
            kc.store("reg.example.com", &cred).unwrap();
            kc.erase("reg.example.com").unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let leaks = watcher.join().unwrap();
        assert!(leaks.is_empty(), "readable by others {} times: {:?}", leaks.len(), &leaks[..leaks.len().min(5)]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(kc.docker_config_path()), 0o600);
        // A stricter mode the user chose is kept.
        std::fs::set_permissions(kc.docker_config_path(), std::fs::Permissions::from_mode(0o400)).unwrap();
        kc.store("reg.example.com", &StoredCredential { username: "me".into(), secret: "x".into() }).unwrap();
        assert_eq!(mode(kc.docker_config_path()), 0o400);
        let leftovers: Vec<_> = std::fs::read_dir(&docker_dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn helper_messages_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let helper = bin.join("docker-credential-zeroimage-test-echo");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread -r input\necho \"cannot store $input (Authorization: Basic dTpw)\" >&2\nexit 1\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let kc = keychain(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(kc.docker_config_path(), r#"{"credsStore":"zeroimage-test-echo"}"#).unwrap();
        let cred = StoredCredential { username: "me".into(), secret: "pa55-word".into() };
        // Helpers are found on PATH; adding a directory only this test uses is harmless to others.
        std::env::set_var("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
        let payload = json!({"ServerURL": "r.io", "Username": "me", "Secret": cred.secret}).to_string();
        let err = run_helper("zeroimage-test-echo", "store", &payload).unwrap_err();
        let report = err.report();
        assert!(report.contains("cannot store"), "{report}");
        assert!(!report.contains("pa55-word") && !report.contains("dTpw"), "{report}");
    }

    #[test]
    fn docker_hub_uses_its_v1_key() {
        let dir = tempfile::tempdir().unwrap();
        let kc = keychain(dir.path());
        kc.store("docker.io", &StoredCredential { username: "u".into(), secret: "p".into() }).unwrap();
        let config: Value = serde_json::from_slice(&std::fs::read(kc.docker_config_path()).unwrap()).unwrap();
        assert!(config["auths"][DOCKER_HUB_KEY].is_object(), "{config}");
        assert!(kc.get("docker.io").unwrap().is_some());
        assert!(kc.get("index.docker.io").unwrap().is_some());
    }

    #[test]
    fn later_files_and_identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let podman = dir.path().join("auth.json");
        std::fs::write(&podman, r#"{"auths":{"https://quay.io":{"identitytoken":"tok"}}}"#).unwrap();
        let kc = Keychain::with_files(dir.path().join("none/config.json"), None, Some(podman.clone()));
        let (cred, source) = kc.get("quay.io").unwrap().unwrap();
        assert!(cred.is_identity_token());
        assert_eq!(source, CredentialSource::PodmanAuthFile(podman));
    }

    #[test]
    fn missing_helper_is_an_error_naming_it_and_debug_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let kc = keychain(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(kc.docker_config_path(), r#"{"credsStore":"zeroimage-test-nonexistent"}"#).unwrap();
        let err = kc.get("reg.example.com").unwrap_err();
        assert!(err.to_string().contains("docker-credential-zeroimage-test-nonexistent"), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Auth);
        let cred = StoredCredential { username: "u".into(), secret: "hunter2".into() };
        assert!(!format!("{cred:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_auth_does_not_echo_it() {
        let dir = tempfile::tempdir().unwrap();
        let kc = keychain(dir.path());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(kc.docker_config_path(), r#"{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}"#).unwrap();
        let err = kc.get("r.io").unwrap_err();
        assert!(!err.report().contains("bm9jb2xvbg"), "{}", err.report());
    }
}
