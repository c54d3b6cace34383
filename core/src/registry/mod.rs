//! Talking to registries (OCI distribution spec): the [`Client`], [`Credentials`], and where
//! credentials are kept ([`keychain`]).
//!
//! Reads (bases) and writes (push) share one client: the `/v2/` ping decides between HTTPS and
//! plain HTTP (only for loopback registries or with `insecure`), and the auth challenge it
//! answers with decides between anonymous access, Basic auth and Bearer tokens (cached per
//! scope).

mod auth;
mod client;
pub mod keychain;

pub use auth::Credentials;
pub use client::Client;
pub(crate) use client::MAX_JSON_SIZE;

use std::path::PathBuf;

/// How to reach registries: TLS trust, plain HTTP, and credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Allow plain HTTP and skip TLS certificate verification (`--insecure`). Plain HTTP is
    /// always allowed for loopback registries (`localhost`, `127.0.0.1`, `[::1]`).
    pub insecure: bool,
    /// PEM files of CA certificates to trust instead of the built-in roots (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Credentials to use (`--creds USER:PASSWORD`); anonymous when `None`.
    pub credentials: Option<Credentials>,
}
