//! Talking to registries (OCI distribution spec): the [`Client`], [`Credentials`], where
//! credentials are kept ([`keychain`]), and [`login`] / [`logout`].
//!
//! Reads (bases) and writes (push) share one client: the `/v2/` ping decides between HTTPS and
//! plain HTTP (only for loopback registries or with `insecure`), and the auth challenge it
//! answers with decides between anonymous access, Basic auth and Bearer tokens (cached per
//! scope). Without explicit credentials, the client asks the [`keychain::Keychain`] (Docker's
//! `config.json`, its credential helpers, `$REGISTRY_AUTH_FILE`, podman's `auth.json`).

mod auth;
mod client;
mod interrupt;
pub mod keychain;
mod login;
mod tls;

pub use auth::Credentials;
pub use client::Client;
pub(crate) use client::{header, push_scope, strip_query, Reply, UploadStart, MAX_JSON_SIZE};
pub use login::{login, logout};
pub use tls::CERTS_D_ENV;

use crate::cancel::CancelToken;
/// Fuzzing: parse a `WWW-Authenticate` value, and check the realm rule on what it names.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_challenge(header: &str) {
    if let Some(auth::Challenge::Bearer { realm, .. }) = auth::Challenge::parse(header) {
        if auth::realm_allowed(&realm, false) {
            assert!(
                realm.to_ascii_lowercase().starts_with("https://") || realm.to_ascii_lowercase().starts_with("http://")
            );
        }
    }
}

/// Fuzzing: parse a `Retry-After` value.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_retry_after(value: &str) {
    let _ = client::parse_retry_after(value, std::time::SystemTime::now());
}

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach registries: TLS trust, plain HTTP, credentials, timeouts and a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Allow plain HTTP and skip TLS certificate verification (`--insecure`). Plain HTTP is
    /// always allowed for loopback registries (`localhost`, `127.0.0.1`, `[::1]`).
    pub insecure: bool,
    /// PEM files of CA certificates to trust instead of the built-in roots (`--ca-cert`).
    /// The registry's `certs.d` directories add to them (see [`CERTS_D_ENV`] and the README's
    /// TLS section); a server certificate identical to one of these files is accepted even when
    /// it is a self-signed CA certificate.
    pub ca_certs: Vec<PathBuf>,
    /// Credentials to use (`--creds USER:PASSWORD`). When `None`, the user's credential
    /// stores are asked (see [`keychain`]) unless `skip_keychain` is set.
    pub credentials: Option<Credentials>,
    /// Never look in credential stores: without `credentials`, access is anonymous.
    pub skip_keychain: bool,
    /// How long a request may make no progress (connect, send, wait, read) before it is
    /// abandoned; default 60 s. There is no limit on a whole upload or download.
    pub timeout: Option<Duration>,
    /// Where the client says what it does (which store supplied credentials, retries,
    /// mounts): the CLI prints these at `--verbose`. Never receives a secret.
    pub log: Option<Logger>,
    /// Set it to make requests in flight give up within a fraction of a second (a build sets
    /// it from its own cancel token).
    pub cancel: CancelToken,
}

impl RegistryOptions {
    /// These options, with requests also cancelled by `cancel`.
    pub(crate) fn cancelled_by(&self, cancel: &CancelToken) -> RegistryOptions {
        RegistryOptions { cancel: cancel.clone(), ..self.clone() }
    }
}

/// A callback receiving one line of log text (the library never prints).
#[derive(Clone)]
pub struct Logger(Arc<dyn Fn(&str) + Send + Sync>);

impl Logger {
    /// A logger calling `f` with each line.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Logger {
        Logger(Arc::new(f))
    }

    /// Log one line.
    pub fn log(&self, line: &str) {
        (self.0)(line)
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger(Fn)")
    }
}

impl PartialEq for Logger {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Logger {}
