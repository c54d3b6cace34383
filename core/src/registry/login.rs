//! `login` and `logout`: check credentials against a registry, then keep them where Docker
//! would (its configured credential helper, else `auths` in `config.json`); or erase them.

use super::keychain::{CredentialSource, Keychain, StoredCredential};
use super::{Client, Credentials, RegistryOptions};
use crate::error::{Error, Result};

/// Check `username` / `password` against `registry` (`GET /v2/` through its auth flow,
/// fetching a Bearer token when it uses token auth), and store them with
/// [`Keychain::store`] only if the registry accepts them. Returns where they were stored.
///
/// `registry` is a host (`registry.example.com:5000`, `docker.io`); a URL
/// (`https://registry.example.com/`) is reduced to its host. Wrong credentials give an
/// [`ErrorKind::Auth`](crate::ErrorKind::Auth) error and leave every store untouched.
pub fn login(registry: &str, username: &str, password: &str, options: &RegistryOptions) -> Result<CredentialSource> {
    let registry = normalize(registry)?;
    if username.is_empty() || password.is_empty() {
        return Err(Error::InvalidOption {
            option: if username.is_empty() { "username" } else { "password" },
            value: String::new(),
            reason: "it is empty".into(),
        });
    }
    let options = RegistryOptions {
        credentials: Some(Credentials::basic(username, password)),
        skip_keychain: true,
        ..options.clone()
    };
    let client = Client::new(&registry, &options)?;
    client.check_login().map_err(|e| match e {
        Error::RegistryAuth { registry, scope, message, .. } => Error::RegistryAuth {
            registry,
            scope,
            message,
            hint: Some("check the user name and password (or access token); nothing was stored".into()),
        },
        other => other,
    })?;
    let credential = StoredCredential { username: username.to_string(), secret: password.to_string() };
    Keychain::from_env().store(&registry, &credential)
}

/// Erase the credentials stored for `registry` (from its credential helper and from
/// `auths`). Whether there were any.
pub fn logout(registry: &str) -> Result<bool> {
    Keychain::from_env().erase(&normalize(registry)?)
}

/// `https://Reg.example.com:5000/v2/` → `reg.example.com:5000`; Docker Hub's names → `docker.io`.
fn normalize(registry: &str) -> Result<String> {
    let trimmed = registry.trim();
    let rest = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('@') {
        return Err(Error::InvalidOption {
            option: "registry",
            value: registry.to_string(),
            reason: "expected a registry host, e.g. registry.example.com or localhost:5000".into(),
        });
    }
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => crate::reference::DOCKER_HUB.to_string(),
        _ => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names() {
        assert_eq!(normalize("https://Reg.example.com:5000/v2/").unwrap(), "reg.example.com:5000");
        assert_eq!(normalize("index.docker.io").unwrap(), "docker.io");
        assert_eq!(normalize("https://index.docker.io/v1/").unwrap(), "docker.io");
        assert_eq!(normalize("localhost:5000").unwrap(), "localhost:5000");
        assert!(normalize("").is_err());
        assert!(normalize("user@host").is_err());
    }
}
