//! A registry behind Bearer token auth: Debian's `docker-registry` with `auth: token`, and a
//! small token issuer (a thread serving `GET /token`) that signs RS256 JWTs with a throw-away
//! key the registry trusts (its self-signed certificate is the registry's `rootcertbundle`,
//! and each token carries it in `x5c`). Signing is done by the `openssl` CLI.
//!
//! ```no_run
//! use zeroimage_tests::token::TokenRegistry;
//! let registry = TokenRegistry::start("alice", "s3cret");
//! println!("{} {:?}", registry.addr(), registry.token_requests());
//! ```

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tempfile::TempDir;

use crate::process::{exec_ok, free_port, require_tool, scratch_dir, Daemon};
use crate::registry::base64;

/// The `service` the registry and the issuer agree on.
pub const SERVICE: &str = "zeroimage-test-registry";
const ISSUER: &str = "zeroimage-test-issuer";

/// One request the token issuer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `scope` query parameter (`repository:NAME:pull`), if any.
    pub scope: Option<String>,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// The user whose Basic credentials came with the request, if they were right.
    pub user: Option<String>,
    /// The status the issuer answered (200, or 401 for wrong credentials).
    pub status: u16,
    /// `GET`, or `POST` for an OAuth2 form request.
    pub method: String,
    /// The OAuth2 `grant_type` of a `POST` (`refresh_token` for an identity token).
    pub grant: Option<String>,
}

/// A registry requiring Bearer tokens from its own issuer; anonymous token requests get
/// tokens without access, `user`/`password` get pull and push on every repository.
/// Dropping it stops both (the registry by PID).
#[derive(Debug)]
pub struct TokenRegistry {
    daemon: Daemon,
    addr: String,
    issuer_addr: String,
    stop: Arc<AtomicBool>,
    issuer: Option<JoinHandle<()>>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    _dir: TempDir,
}

impl TokenRegistry {
    /// Starts the issuer and the registry and waits until `/v2/` answers 401.
    pub fn start(user: &str, password: &str) -> TokenRegistry {
        require_tool("docker-registry");
        require_tool("openssl");
        let dir = scratch_dir();
        let base = dir.path().to_path_buf();
        exec_ok(Command::new("openssl").current_dir(&base).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "issuer.key",
            "-out",
            "issuer.crt",
            "-days",
            "2",
            "-subj",
            "/CN=zeroimage-test-issuer",
        ]));
        let der =
            exec_ok(Command::new("openssl").current_dir(&base).args(["x509", "-in", "issuer.crt", "-outform", "DER"]))
                .stdout;

        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the token issuer");
        let issuer_addr = listener.local_addr().expect("issuer address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let signer = Signer { key: base.join("issuer.key"), x5c: base64(&der), work: base.clone() };
        let issuer = {
            let (stop, requests) = (stop.clone(), requests.clone());
            let (user, password) = (user.to_string(), password.to_string());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = serve(stream, &signer, &user, &password, &requests);
                    }
                }
            })
        };

        let addr = format!("127.0.0.1:{}", free_port());
        let root = base.join("storage");
        fs::create_dir(&root).expect("storage dir");
        let config = base.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {root}\n\
                 http:\n  addr: {addr}\n  secret: zeroimage-test-secret\n\
                 auth:\n  token:\n    realm: http://{issuer_addr}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n",
                root = root.display(),
                bundle = base.join("issuer.crt").display()
            ),
        )
        .expect("registry config");
        let log = base.join("registry.log");
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&config);
        let mut daemon = Daemon::spawn("docker-registry", &mut cmd, &log, Some(&base));
        daemon.wait_until("the token-auth registry", Duration::from_secs(30), || status_of(&addr, "/v2/") == Some(401));
        TokenRegistry { daemon, addr, issuer_addr, stop, issuer: Some(issuer), requests, _dir: dir }
    }

    /// `127.0.0.1:PORT` of the registry.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `127.0.0.1:PORT` of the token issuer.
    pub fn issuer_addr(&self) -> &str {
        &self.issuer_addr
    }

    /// The registry's log.
    pub fn log_path(&self) -> &Path {
        self.daemon.log_path()
    }

    /// Every token request so far, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        self.daemon.stop();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.issuer_addr);
        if let Some(issuer) = self.issuer.take() {
            let _ = issuer.join();
        }
    }
}

/// The HTTP status of `GET http://ADDR/PATH`, if anything answered.
fn status_of(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Signer {
    key: PathBuf,
    x5c: String,
    work: PathBuf,
}

impl Signer {
    fn token(&self, subject: &str, access: serde_json::Value) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 600, "nbf": now - 60, "iat": now - 60,
            "jti": format!("{now}-{}", Instant::now().elapsed().as_nanos()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(&serde_json::to_vec(&header).unwrap()),
            base64url(&serde_json::to_vec(&claims).unwrap())
        );
        let input = self.work.join(format!("jwt-{}", std::process::id()));
        fs::write(&input, &signing_input).expect("write JWT input");
        let signature =
            exec_ok(Command::new("openssl").args(["dgst", "-sha256", "-binary", "-sign"]).arg(&self.key).arg(&input))
                .stdout;
        format!("{signing_input}.{}", base64url(&signature))
    }
}

fn base64url(bytes: &[u8]) -> String {
    base64(bytes).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

fn serve(
    stream: TcpStream,
    signer: &Signer,
    user: &str,
    password: &str,
    requests: &Mutex<Vec<TokenRequest>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            } else if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let method = request_line.split_whitespace().next().unwrap_or("GET").to_string();
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    // GET carries its parameters in the query; an OAuth2 POST in a form body.
    let mut params = target.split_once('?').map_or("", |(_, q)| q).to_string();
    if method == "POST" {
        let mut body = vec![0u8; content_length.min(1 << 16)];
        reader.read_exact(&mut body)?;
        params = String::from_utf8_lossy(&body).into_owned();
    }
    let param = |key: &str| {
        params.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| percent_decode(v)))
    };
    let (scope, service, grant) = (param("scope"), param("service"), param("grant_type"));
    let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
    let authorized = match grant.as_deref() {
        Some("refresh_token") => param("refresh_token").map(|t| t == identity_token(password)),
        _ => authorization.as_deref().map(|given| given == expected),
    };
    let (status, body) = match authorized {
        Some(true) => {
            let access: Vec<serde_json::Value> = scope
                .iter()
                .flat_map(|s| s.split(' '))
                .filter_map(|s| {
                    let mut parts = s.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                })
                .collect();
            let token = signer.token(user, json!(access));
            if grant.is_some() {
                // OAuth2 answers with `access_token` only.
                (200, json!({"access_token": token, "expires_in": 600}).to_string())
            } else {
                (200, json!({"token": token, "access_token": token, "expires_in": 600}).to_string())
            }
        }
        Some(false) => (401, json!({"details": "wrong user name or password"}).to_string()),
        None => {
            let token = signer.token("", json!([]));
            (200, json!({"token": token, "expires_in": 600}).to_string())
        }
    };
    requests.lock().unwrap_or_else(|e| e.into_inner()).push(TokenRequest {
        scope,
        service,
        user: (status == 200 && authorized.is_some()).then(|| user.to_string()),
        status,
        method,
        grant,
    });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        if status == 200 { "OK" } else { "Unauthorized" },
        body.len()
    )?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    let _ = reader.read(&mut [0u8; 0]);
    Ok(())
}

/// The OAuth2 identity (refresh) token the issuer accepts in place of `password`, as
/// `docker login` stores it for registries with OAuth (`identitytoken` in config.json).
pub fn identity_token(password: &str) -> String {
    format!("identity-{password}")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
