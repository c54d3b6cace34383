//! Registry credentials and the `WWW-Authenticate` challenges registries answer with.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Credentials for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// A user name and password (or personal access token), sent as HTTP Basic to registries
    /// that ask for Basic auth, and to token servers that issue Bearer tokens.
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// A ready-made Bearer token, sent as is.
    Bearer(String),
    /// An OAuth2 refresh token (Docker's `identitytoken`, user `<token>`), exchanged at the
    /// registry's token server for access tokens (`grant_type=refresh_token`).
    IdentityToken(String),
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic { username: username.into(), password: password.into() }
    }

    /// The user name, when there is one (for messages).
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::Bearer(_) | Credentials::IdentityToken(_) => None,
        }
    }

    /// The `Authorization` header value for HTTP Basic auth, when these are Basic credentials.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => {
                Some(format!("Basic {}", base64_encode(format!("{username}:{password}").as_bytes())))
            }
            Credentials::Bearer(_) | Credentials::IdentityToken(_) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl FromStr for Credentials {
    type Err = Error;

    /// `USER:PASSWORD` (the password may contain `:`). The input never appears in errors.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Credentials::basic(user, password))
            }
            _ => Err(Error::InvalidOption {
                option: "creds",
                value: "<redacted>".into(),
                reason: "expected USER:PASSWORD".into(),
            }),
        }
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authentication needed (`/v2/` answered 200).
    None,
    /// HTTP Basic.
    Basic,
    /// A Bearer token from `realm`, for `service`; `scope` when the challenge named one.
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// Parse a `WWW-Authenticate` header value (`Bearer realm="…",service="…",scope="…"`).
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let params = parse_params(rest);
                let get = |k: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
                Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
            }
            _ => None,
        }
    }
}

/// Whether credentials may be sent to the token server `realm`: over HTTPS, or over plain
/// HTTP when the realm's own host is loopback or with `insecure` — the rule the registry
/// itself obeys, applied to the realm's host (a loopback registry may name a remote realm).
pub(crate) fn realm_allowed(realm: &str, insecure: bool) -> bool {
    let Some((scheme, rest)) = realm.split_once("://") else { return false };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            insecure || super::client::is_loopback(host)
        }
        _ => false,
    }
}

/// `key="value", key2=value2` → pairs; quoted values may contain commas and `\"`.
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.push((key.trim().to_string(), value));
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let creds: Credentials = "alice:s3cret:with:colons".parse().unwrap();
        let shown = format!("{creds:?}");
        assert!(shown.contains("alice") && !shown.contains("s3cret"), "{shown}");
        assert!(!format!("{:?}", Credentials::Bearer("tok123".into())).contains("tok123"));
        let err = "nopassword".parse::<Credentials>().unwrap_err();
        assert!(!err.report().contains("nopassword"), "{}", err.report());
        assert!(":x".parse::<Credentials>().is_err());
    }

    #[test]
    fn basic_header() {
        // RFC 7617's example.
        assert_eq!(
            Credentials::basic("Aladdin", "open sesame").basic_header().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
    }

    #[test]
    fn parses_challenges() {
        let cases = [
            ("Basic realm=\"Registry Realm\"", Some(Challenge::Basic)),
            (
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\"",
                Some(Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:library/alpine:pull".into()),
                }),
            ),
            (
                "bearer realm=http://127.0.0.1:1/t, scope=\"repository:a:pull,push\"",
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: None,
                    scope: Some("repository:a:pull,push".into()),
                }),
            ),
            ("Bearer service=\"x\"", None),
            ("Negotiate", None),
        ];
        for (input, want) in cases {
            assert_eq!(Challenge::parse(input), want, "{input}");
        }
    }
}
