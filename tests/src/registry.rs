//! A private registry: Debian's `docker-registry` (distribution 2.8.2) on 127.0.0.1, with
//! optional htpasswd Basic auth and optional TLS from a throw-away CA.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{exec, exec_ok, free_port, require_tool, scratch_dir, Daemon};

/// How to start a [`Registry`].
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// Require HTTP Basic auth with this user and password (htpasswd, bcrypt).
    pub auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate from a fresh CA (see [`Registry::ca_cert`]).
    pub tls: bool,
    /// Serve HTTPS with a self-signed certificate made as Docker's guide makes it
    /// (`openssl req -x509`, CA:TRUE), instead of a CA-signed leaf.
    pub self_signed: bool,
    /// Require a client certificate signed by a second fresh CA (`http.tls.clientcas`); see
    /// [`Registry::client_cert`].
    pub mutual_tls: bool,
}

impl fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("auth", &self.auth.as_ref().map(|(user, _)| (user, "<redacted>")))
            .field("tls", &self.tls)
            .field("self_signed", &self.self_signed)
            .field("mutual_tls", &self.mutual_tls)
            .finish()
    }
}

impl RegistryOptions {
    /// Requires Basic auth with `user` / `password`.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Serves HTTPS.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Serves HTTPS with a self-signed CA:TRUE certificate (Docker's guide's recipe).
    pub fn self_signed_tls(mut self) -> Self {
        self.tls = true;
        self.self_signed = true;
        self
    }

    /// Serves HTTPS and requires a client certificate (mutual TLS).
    pub fn mutual_tls(mut self) -> Self {
        self.tls = true;
        self.mutual_tls = true;
        self
    }

    /// Starts the registry.
    pub fn start(self) -> Registry {
        Registry::start_with(self)
    }
}

/// One request as the registry's access log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    /// `GET`, `HEAD`, `PUT`, …
    pub method: String,
    /// The request target, query string included.
    pub uri: String,
    /// The response status.
    pub status: u16,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

impl RegistryRequest {
    /// The request path without its query string.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
}

/// An HTTP response fetched with curl.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code of the final response.
    pub status: u16,
    /// Response headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }
}

/// A private registry process on `127.0.0.1:<free port>`, storage in a private directory.
/// Dropping it stops that process (by PID) and removes its files.
///
/// ```no_run
/// use zeroimage_tests::{Registry, RegistryOptions};
/// let plain = Registry::start();
/// let secure = RegistryOptions::default().auth("alice", "s3cret").tls().start();
/// println!("{} {:?}", plain.addr(), secure.ca_cert());
/// ```
#[derive(Debug)]
pub struct Registry {
    daemon: Daemon,
    addr: String,
    auth: Option<(String, String)>,
    tls: Option<TlsFiles>,
    root: PathBuf,
    // Dropped last: the process must be stopped before its directory goes away.
    _dir: TempDir,
}

/// The files of a registry's throw-away PKI.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca_cert: PathBuf,
    cert_dir: PathBuf,
    /// With mutual TLS: a client certificate and its key, signed by the CA the registry asks for.
    client: Option<(PathBuf, PathBuf)>,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn start() -> Registry {
        Registry::start_with(RegistryOptions::default())
    }

    /// One plain-HTTP registry shared by every test of this process, started on first use
    /// (stopped by the watchdog when the process exits). Use distinct repository names.
    pub fn shared() -> &'static Registry {
        static SHARED: OnceLock<Registry> = OnceLock::new();
        SHARED.get_or_init(Registry::start)
    }

    /// Starts a registry and waits (up to 30 s) until `/v2/` answers (200, or 401 with auth).
    pub fn start_with(options: RegistryOptions) -> Registry {
        require_tool("docker-registry");
        require_tool("curl");
        let dir = scratch_dir();
        let base = dir.path().to_path_buf();
        let root = base.join("storage");
        fs::create_dir(&root).expect("cannot create the registry storage dir");

        let tls = options.tls.then(|| make_tls(&base, options.self_signed, options.mutual_tls));
        let htpasswd = options.auth.as_ref().map(|(user, password)| {
            require_tool("htpasswd");
            let out = exec_ok(Command::new("htpasswd").args(["-Bbn", user, password]));
            let path = base.join("htpasswd");
            fs::write(&path, out.stdout).expect("cannot write htpasswd");
            path
        });

        // The port was free a moment ago; on a clash, try another.
        let ca_cert = tls.as_ref().map(|files| files.ca_cert.clone());
        let client = tls.as_ref().and_then(|files| files.client.clone());
        let mut attempt = 0;
        let (daemon, addr) = loop {
            attempt += 1;
            let addr = format!("127.0.0.1:{}", free_port());
            let config = base.join("config.yml");
            fs::write(&config, config_yaml(&addr, &root, htpasswd.as_deref(), &base, tls.as_ref()))
                .expect("cannot write the registry config");
            let log = base.join("registry.log");
            let _ = fs::remove_file(&log); // a failed attempt's lines must not count
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve").arg(&config);
            let mut daemon = Daemon::spawn("docker-registry", &mut cmd, &log, Some(&base));
            match wait_ready(&mut daemon, &addr, ca_cert.as_deref(), client.as_ref()) {
                Ok(()) => break (daemon, addr),
                Err(reason) if attempt < 5 && reason.contains("address already in use") => {
                    drop(daemon);
                }
                Err(reason) => panic!("{reason}"),
            }
        };
        Registry { daemon, addr, auth: options.auth, tls, root, _dir: dir }
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// `127.0.0.1:PORT/REPO_AND_TAG`, e.g. `image("hello:1")`.
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// `docker://127.0.0.1:PORT/REPO_AND_TAG`, for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}", self.image(repo_and_tag))
    }

    /// Whether the registry serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The CA certificate (PEM) that signed the registry's certificate, when TLS is on.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.tls.as_ref().map(|files| files.ca_cert.as_path())
    }

    /// With [`RegistryOptions::mutual_tls`]: a client certificate (PEM) the registry accepts, and
    /// its key.
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.tls.as_ref().and_then(|files| files.client.as_ref()).map(|(cert, key)| (cert.as_path(), key.as_path()))
    }

    /// A directory holding `ca.crt` (and with mutual TLS `client.cert` + `client.key`), for
    /// `skopeo --cert-dir` / `podman --cert-dir`.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.tls.as_ref().map(|files| files.cert_dir.as_path())
    }

    /// The user and password the registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The registry's storage root (`docker/registry/v2/…` lives below it).
    pub fn storage_dir(&self) -> &Path {
        &self.root
    }

    /// The registry's log: its own lines plus one access-log line per request.
    pub fn log_path(&self) -> &Path {
        self.daemon.log_path()
    }

    /// The registry's PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Every request served so far, from the access log, oldest first.
    ///
    /// The registry logs a request just after answering it, so this first waits until the
    /// log has stopped growing for 100 ms (at most 2 s).
    pub fn requests(&self) -> Vec<RegistryRequest> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut size = log_size(self.log_path());
        loop {
            thread::sleep(Duration::from_millis(100));
            let now = log_size(self.log_path());
            if now == size || Instant::now() >= deadline {
                break;
            }
            size = now;
        }
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().filter_map(parse_access_line).collect()
    }

    /// Flags that point skopeo (`inspect`, `delete`) and podman (`pull`, `push`, `login`) at
    /// this registry: `--tls-verify=false` or `--cert-dir DIR`, and `--creds USER:PASS`.
    pub fn flags(&self) -> Vec<String> {
        self.flags_with_prefix("")
    }

    /// The same flags for the source side of `skopeo copy` (`--src-…`).
    pub fn src_flags(&self) -> Vec<String> {
        self.flags_with_prefix("src-")
    }

    /// The same flags for the destination side of `skopeo copy` (`--dest-…`).
    pub fn dest_flags(&self) -> Vec<String> {
        self.flags_with_prefix("dest-")
    }

    fn flags_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut flags = Vec::new();
        match self.cert_dir() {
            Some(dir) => flags.push(format!("--{prefix}cert-dir={}", dir.display())),
            None => flags.push(format!("--{prefix}tls-verify=false")),
        }
        if let Some((user, password)) = self.credentials() {
            flags.push(format!("--{prefix}creds={user}:{password}"));
        }
        flags
    }

    /// Writes `DIR/config.json` in Docker's format with this registry's credentials (an
    /// `auths` entry keyed by `127.0.0.1:PORT`; `{}` without auth) and returns its path.
    /// Point `DOCKER_CONFIG` at `DIR` to use it.
    pub fn write_docker_config(&self, dir: &Path) -> PathBuf {
        let config = match self.credentials() {
            Some((user, password)) => serde_json::json!({
                "auths": { self.addr.clone(): { "auth": base64(format!("{user}:{password}").as_bytes()) } }
            }),
            None => serde_json::json!({}),
        };
        fs::create_dir_all(dir).expect("cannot create the docker config dir");
        let path = dir.join("config.json");
        fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("cannot write config.json");
        path
    }

    /// `GET PATH` (e.g. `/v2/_catalog`) with the registry's credentials.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], true)
    }

    /// Any request to `PATH`, with or without the credentials, through curl (which trusts
    /// the registry's CA). Panics if no HTTP response arrives.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], authenticated: bool) -> HttpResponse {
        let url = format!("{}{path}", self.url());
        let creds = if authenticated { self.credentials() } else { None };
        let client = self.tls.as_ref().and_then(|files| files.client.as_ref());
        curl_with(method, &url, headers, self.ca_cert(), client, creds)
            .unwrap_or_else(|err| panic!("no HTTP response from {method} {url}: {err}"))
    }
}

fn config_yaml(addr: &str, root: &Path, htpasswd: Option<&Path>, base: &Path, tls: Option<&TlsFiles>) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: zeroimage-test-secret\n",
        root = root.display()
    );
    if let Some(files) = tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            base.join("tls/server.crt").display(),
            base.join("tls/server.key").display()
        ));
        if files.client.is_some() {
            yaml.push_str(&format!("    clientcas:\n      - {}\n", base.join("tls/client-ca.crt").display()));
        }
    }
    if let Some(path) = htpasswd {
        yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: zeroimage-test\n    path: {}\n", path.display()));
    }
    yaml
}

/// A fresh CA and a server certificate for 127.0.0.1, ::1 and localhost (P-256, 2 days), or a
/// self-signed CA:TRUE server certificate; with `mutual`, a second CA for client certificates and
/// one client certificate.
fn make_tls(base: &Path, self_signed: bool, mutual: bool) -> TlsFiles {
    require_tool("openssl");
    let dir = base.join("tls");
    fs::create_dir(&dir).expect("cannot create the tls dir");
    let openssl = |args: &[&str]| {
        exec_ok(Command::new("openssl").args(args).current_dir(&dir));
    };
    let ca = |name: &str, subject: &str| {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    };
    // A leaf key and certificate signed by `ca_name`, with these extensions.
    let leaf = |name: &str, subject: &str, ca_name: &str, extensions: &str| {
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ]);
        fs::write(dir.join(format!("{name}.ext")), extensions).expect("cannot write an extension file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca_name}.crt"),
            "-CAkey",
            &format!("{ca_name}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    };
    let ca_cert = if self_signed {
        // Docker's guide ("Use self-signed certificates"): `openssl req -newkey rsa:4096 -nodes
        // -sha256 -keyout domain.key -x509 -days 365 -out domain.crt` with an IP SAN. OpenSSL 3
        // marks it CA:TRUE. (RSA 2048 here: the key size changes nothing but the wait.)
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-keyout",
            "server.key",
            "-x509",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        ]);
        dir.join("server.crt")
    } else {
        ca("ca", "/CN=zeroimage test CA");
        leaf(
            "server",
            "/CN=127.0.0.1",
            "ca",
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        );
        dir.join("ca.crt")
    };
    let client = mutual.then(|| {
        ca("client-ca", "/CN=zeroimage test client CA");
        leaf(
            "client",
            "/CN=zeroimage test client",
            "client-ca",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        );
        (dir.join("client.crt"), dir.join("client.key"))
    });
    let cert_dir = base.join("certs");
    fs::create_dir(&cert_dir).expect("cannot create the cert dir");
    fs::copy(&ca_cert, cert_dir.join("ca.crt")).expect("cannot copy ca.crt");
    if let Some((cert, key)) = &client {
        // skopeo and podman read `X.cert` + `X.key` pairs there as client certificates.
        fs::copy(cert, cert_dir.join("client.cert")).expect("cannot copy client.cert");
        fs::copy(key, cert_dir.join("client.key")).expect("cannot copy client.key");
    }
    TlsFiles { ca_cert, cert_dir, client }
}

fn wait_ready(
    daemon: &mut Daemon,
    addr: &str,
    ca: Option<&Path>,
    client: Option<&(PathBuf, PathBuf)>,
) -> Result<(), String> {
    let scheme = if ca.is_some() { "https" } else { "http" };
    let url = &format!("{scheme}://{addr}/v2/");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Our process says it listens (not some other one that took the port), and any HTTP
        // answer (200, or 401 when auth is on) means it is serving.
        let log = fs::read_to_string(daemon.log_path()).unwrap_or_default();
        if log.contains(&format!("listening on {addr}")) && curl_with("GET", url, &[], ca, client, None).is_ok() {
            return Ok(());
        }
        if let Some(status) = daemon.exit_status() {
            return Err(format!(
                "docker-registry exited ({status}) before serving {url}; log {}:\n{}",
                daemon.log_path().display(),
                daemon.log_tail(30)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "docker-registry not serving {url} after 30s; log {}:\n{}",
                daemon.log_path().display(),
                daemon.log_tail(30)
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// One request with curl: `Err` when no HTTP response arrived (connection refused, TLS
/// failure…), with curl's message.
pub fn curl(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    ca_cert: Option<&Path>,
    creds: Option<(&str, &str)>,
) -> Result<HttpResponse, String> {
    curl_with(method, url, headers, ca_cert, None, creds)
}

/// [`curl`] with a client certificate and key.
fn curl_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    ca_cert: Option<&Path>,
    client: Option<&(PathBuf, PathBuf)>,
    creds: Option<(&str, &str)>,
) -> Result<HttpResponse, String> {
    let tmp = tempfile::tempdir().expect("cannot create a temporary directory");
    let head_file = tmp.path().join("headers");
    let body_file = tmp.path().join("body");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-w", "%{http_code}"]).arg("-D").arg(&head_file).arg("-o").arg(&body_file);
    if method == "HEAD" {
        cmd.arg("--head");
    } else {
        cmd.args(["-X", method]);
    }
    if let Some(ca) = ca_cert {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some((user, password)) = creds {
        cmd.arg("-u").arg(format!("{user}:{password}"));
    }
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    cmd.arg(url);
    let out = exec(&mut cmd);
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status: u16 = code.parse().unwrap_or(0);
    if !out.status.success() || status == 0 {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let raw = fs::read_to_string(&head_file).unwrap_or_default();
    // With interim responses (100 Continue) several blocks are written; keep the last.
    let block = raw.split("\r\n\r\n").filter(|block| !block.trim().is_empty()).last().unwrap_or("");
    let headers = block
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(HttpResponse { status, headers, body: fs::read(&body_file).unwrap_or_default() })
}

fn log_size(path: &Path) -> u64 {
    fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// Parses one combined-format access-log line:
/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`.
fn parse_access_line(line: &str) -> Option<RegistryRequest> {
    if line.starts_with("time=") {
        return None;
    }
    let rest = &line[line.find("] \"")? + 3..];
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_string();
    let uri = parts.next()?.to_string();
    let status = rest.split_whitespace().next()?.parse().ok()?;
    let user_agent = rest
        .trim_end()
        .strip_suffix('"')
        .and_then(|s| s.rsplit_once('"'))
        .map(|(_, agent)| agent.to_string())
        .unwrap_or_default();
    Some(RegistryRequest { method, uri, status, user_agent })
}

/// Standard base64 with padding (for Docker's `auths` entries).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_lines() {
        let line = r#"127.0.0.1 - - [23/Nov/2026:15:48:27 +0000] "PUT /v2/hello/manifests/1 HTTP/1.1" 201 0 "" "skopeo/1.9.3""#;
        assert_eq!(
            parse_access_line(line),
            Some(RegistryRequest {
                method: "PUT".into(),
                uri: "/v2/hello/manifests/1".into(),
                status: 201,
                user_agent: "skopeo/1.9.3".into(),
            })
        );
        assert_eq!(parse_access_line(r#"time="x" level=info msg="listening""#), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("alice:s3cret", "YWxpY2U6czNjcmV0"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
