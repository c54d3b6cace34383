//! TLS to registries the way Docker, podman and skopeo set it up.
//!
//! What is trusted, for a registry `host[:port]`:
//! 1. the CA certificates of `--ca-cert`, else of `$SSL_CERT_FILE`, else the built-in Mozilla
//!    roots;
//! 2. on top of those, every `*.crt` in the registry's own directory under each `certs.d` root:
//!    `$HOME/.config/containers/certs.d/<host[:port]>/`, `/etc/containers/certs.d/…`,
//!    `/etc/docker/certs.d/…` (or the roots listed in `$ZEROIMAGE_CERTS_D`, `:`-separated).
//!
//! The first `*.cert` + `*.key` pair found in those directories (`client.cert` / `client.key`)
//! is offered as the client certificate, for registries that require mutual TLS.
//!
//! A server certificate byte-identical to one the user trusts explicitly (any of the files
//! above, not the built-in roots) is accepted even when it is a CA certificate used as the
//! server's own (`openssl req -x509`, as Docker's guide makes them), as Go's TLS stack does;
//! its validity period and names are still checked. Everything else gets full verification.
//! Certificate failures become [`Error::Certificate`] with words for what was wrong and which
//! file to pass.

use super::RegistryOptions;
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

/// The environment variable listing the `certs.d` roots to search (`:`-separated) instead of
/// `$HOME/.config/containers/certs.d`, `/etc/containers/certs.d` and `/etc/docker/certs.d`.
pub const CERTS_D_ENV: &str = "ZEROIMAGE_CERTS_D";

/// The `certs.d` roots searched, in order, when `$ZEROIMAGE_CERTS_D` is not set.
fn default_certs_d_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        roots.push(PathBuf::from(home).join(".config/containers/certs.d"));
    }
    roots.push(PathBuf::from("/etc/containers/certs.d"));
    roots.push(PathBuf::from("/etc/docker/certs.d"));
    roots
}

fn certs_d_roots() -> Vec<PathBuf> {
    match std::env::var_os(CERTS_D_ENV).filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect(),
        None => default_certs_d_roots(),
    }
}

/// The TLS set-up for one registry: the rustls configuration and what it was made from (for
/// error hints).
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    /// `host[:port]`.
    registry: String,
    /// The per-registry directories searched (existing or not).
    host_dirs: Vec<PathBuf>,
    /// The CA files trusted explicitly (`--ca-cert`, `$SSL_CERT_FILE`, `certs.d/…/*.crt`).
    trusted_files: Vec<PathBuf>,
    /// The client certificate offered, when one was found.
    client_cert: Option<PathBuf>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("registry", &self.registry)
            .field("trusted_files", &self.trusted_files)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// The set-up for `registry` (`host[:port]`).
    pub(crate) fn new(registry: &str, options: &RegistryOptions) -> Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let mut pinned: Vec<CertificateDer<'static>> = Vec::new();
        let mut trusted_files = Vec::new();

        // `--ca-cert` files, else `$SSL_CERT_FILE` (as OpenSSL and Go honour it), else the
        // built-in Mozilla roots.
        let base_files = if options.ca_certs.is_empty() {
            std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(PathBuf::from).into_iter().collect()
        } else {
            options.ca_certs.clone()
        };
        if base_files.is_empty() {
            roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        }
        for path in &base_files {
            add_ca_file(path, &mut roots, &mut pinned)?;
            trusted_files.push(path.clone());
        }

        // certs.d: every root's directory for this registry adds its CAs; the first client
        // certificate pair wins.
        let host_dirs: Vec<PathBuf> = certs_d_roots().into_iter().map(|root| root.join(registry)).collect();
        let mut client = None;
        for dir in &host_dirs {
            let found = read_host_dir(dir)?;
            for path in found.cas {
                add_ca_file(&path, &mut roots, &mut pinned)?;
                trusted_files.push(path);
            }
            if client.is_none() {
                client = found.client;
            }
        }

        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| {
                Error::InvalidOption {
                    option: "--ca-cert",
                    value: trusted_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                    reason: format!("no usable CA certificate ({e})"),
                }
            })?;
        let verifier = Arc::new(Verifier { inner, pinned, insecure: options.insecure });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| Error::Unsupported { what: format!("TLS set-up ({e})"), hint: None })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let (config, client_cert) = match client {
            None => (builder.with_no_client_auth(), None),
            Some((cert_path, key_path)) => {
                let chain = read_certificates(&cert_path, "read client certificate")?;
                let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                    Error::io(
                        "read client key",
                        &key_path,
                        io::Error::new(io::ErrorKind::InvalidData, format!("no usable PEM private key ({e})")),
                    )
                })?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| Error::InvalidOption {
                    option: "client certificate",
                    value: cert_path.display().to_string(),
                    reason: format!("cannot be used with the key {} ({})", key_path.display(), describe(&e)),
                })?;
                (config, Some(cert_path))
            }
        };
        let tls =
            Tls { config: Arc::new(config), registry: registry.to_string(), host_dirs, trusted_files, client_cert };
        if let Some(log) = &options.log {
            log.log(&format!("TLS to {registry} trusts {}", tls.describe()));
        }
        Ok(tls)
    }

    /// The connector chain for an agent: HTTP CONNECT proxies, TCP, then TLS with this set-up.
    pub(crate) fn connector(&self) -> impl Connector<()> {
        use ureq::unversioned::transport::{ConnectProxyConnector, TcpConnector};
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(TlsConnector { config: self.config.clone() })
    }

    /// Files whose certificates are trusted explicitly, and the client certificate offered.
    fn describe(&self) -> String {
        let mut out = match self.trusted_files.as_slice() {
            [] => "built-in roots".to_string(),
            files => files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        };
        if let Some(cert) = &self.client_cert {
            out.push_str(&format!("; client certificate {}", cert.display()));
        }
        out
    }

    /// A certificate failure (theirs or ours) somewhere in `error`'s chain, in words, with
    /// what to do about it; `None` for other failures, TLS handshake failures included.
    pub(crate) fn explain(&self, url: &str, error: &(dyn std::error::Error + 'static)) -> Option<Error> {
        let tls_error = find_rustls_error(error)?;
        let host = &self.registry;
        let dir = self.host_dirs.last().map_or_else(|| format!("certs.d/{host}"), |d| d.display().to_string());
        let trust_hint = format!(
            "if you trust this registry, pass its CA certificate (or the self-signed certificate \
             itself) with --ca-cert FILE, or copy it to {dir}/ca.crt{}; --insecure skips \
             verification for a test registry",
            self.other_dirs()
        );
        let (reason, hint) = match tls_error {
            rustls::Error::InvalidCertificate(cert_error) => match cert_error {
                CertificateError::UnknownIssuer => {
                    (format!("the certificate of {host} is not signed by any CA zeroimage trusts"), trust_hint)
                }
                CertificateError::Other(other) if is_ca_used_as_end_entity(other) => (
                    format!(
                        "{host} presents a CA certificate (self-signed, CA:TRUE) as its own, and it \
                         is not one you trust"
                    ),
                    trust_hint,
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    let names = match cert_error {
                        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                            format!(" (it names {})", presented.join(", "))
                        }
                        _ => String::new(),
                    };
                    (
                        format!("the certificate of {host} is not valid for the name {host}{names}"),
                        "reach the registry by a name its certificate lists, or have the certificate \
                         reissued with this name in its subjectAltName"
                            .to_string(),
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                    format!("the certificate of {host} has expired"),
                    "renew the registry's certificate (and check this machine's clock)".to_string(),
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                    format!("the certificate of {host} is not valid yet"),
                    "check this machine's clock and the certificate's start date".to_string(),
                ),
                CertificateError::Revoked => (
                    format!("the certificate of {host} has been revoked"),
                    "the registry needs a new certificate".to_string(),
                ),
                CertificateError::BadSignature => {
                    (format!("the certificate of {host} has a signature that does not verify"), trust_hint)
                }
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
                    format!("the certificate of {host} is not meant for TLS servers (extendedKeyUsage)"),
                    "have the certificate reissued with extendedKeyUsage=serverAuth".to_string(),
                ),
                CertificateError::BadEncoding => {
                    (format!("the certificate of {host} is malformed"), "check the registry's certificate file".into())
                }
                _ => (format!("the certificate of {host} was refused ({})", describe(tls_error)), trust_hint),
            },
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::AccessDenied => match &self.client_cert {
                    None => (
                        format!("{host} requires a client certificate (mutual TLS) and none was found"),
                        format!(
                            "put the client certificate and its key in {dir}/client.cert and \
                             {dir}/client.key (or set {CERTS_D_ENV})"
                        ),
                    ),
                    Some(cert) => (
                        format!("{host} refused the client certificate {} ({})", cert.display(), alert_words(*alert)),
                        "use a client certificate signed by a CA the registry trusts, and check that it \
                         has not expired"
                            .to_string(),
                    ),
                },
                // Other alerts and handshake failures (a plain-HTTP server, no common cipher)
                // stay network errors: a loopback registry may then be tried over plain HTTP.
                _ => return None,
            },
            _ => return None,
        };
        Some(Error::Certificate { url: url.to_string(), reason, hint })
    }

    /// ` (also read: A, B; $ZEROIMAGE_CERTS_D replaces these directories)`.
    fn other_dirs(&self) -> String {
        let others = &self.host_dirs[..self.host_dirs.len().saturating_sub(1)];
        let also = if others.is_empty() {
            String::new()
        } else {
            format!("also read: {}; ", others.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))
        };
        format!(" ({also}{CERTS_D_ENV} replaces these directories)")
    }
}

/// The `*.crt` files and the client certificate pair of one `certs.d/<host>` directory.
#[derive(Debug, Default)]
struct HostDir {
    cas: Vec<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

/// Reads one `certs.d/<host>` directory as Docker does: `*.crt` are CAs, `X.cert` needs `X.key`
/// and the other way round. A missing directory is empty.
fn read_host_dir(dir: &Path) -> Result<HostDir> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => {
            return Ok(HostDir::default())
        }
        Err(e) => return Err(Error::io("list certificate directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list certificate directory", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut found = HostDir::default();
    for name in &names {
        if name.ends_with(".crt") {
            found.cas.push(dir.join(name));
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(Error::InvalidOption {
                    option: "client certificate",
                    value: dir.join(name).display().to_string(),
                    reason: format!(
                        "its key {} is missing (a client certificate X.cert needs X.key)",
                        dir.join(key).display()
                    ),
                });
            }
            if found.client.is_none() {
                found.client = Some((dir.join(name), dir.join(key)));
            }
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !names.contains(&cert) {
                return Err(Error::InvalidOption {
                    option: "client key",
                    value: dir.join(name).display().to_string(),
                    reason: format!(
                        "its certificate {} is missing (a client key X.key needs X.cert; CA certificates end in .crt)",
                        dir.join(cert).display()
                    ),
                });
            }
        }
    }
    Ok(found)
}

/// Every certificate of a PEM file; an error when it holds none.
fn read_certificates(path: &Path, op: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(op, path, e))?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        match item {
            Ok(cert) => certs.push(cert),
            Err(e) => {
                return Err(Error::io(
                    op,
                    path,
                    io::Error::new(io::ErrorKind::InvalidData, format!("not a PEM certificate file ({e})")),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::io(op, path, io::Error::new(io::ErrorKind::InvalidData, "no PEM certificate in the file")));
    }
    Ok(certs)
}

/// Adds a CA file's certificates as trust anchors and to the explicitly trusted ones.
fn add_ca_file(path: &Path, roots: &mut RootCertStore, pinned: &mut Vec<CertificateDer<'static>>) -> Result<()> {
    let certs = read_certificates(path, "read CA certificate")?;
    let (_, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
    if ignored > 0 {
        return Err(Error::io(
            "read CA certificate",
            path,
            io::Error::new(io::ErrorKind::InvalidData, "a certificate in the file cannot be parsed as X.509"),
        ));
    }
    pinned.extend(certs);
    Ok(())
}

/// Full verification, except that a server certificate byte-identical to an explicitly
/// trusted one is accepted when it fails only for being a CA or for having no known issuer
/// (webpki checks the certificate's own validity period before either; the name is checked
/// here).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    insecure: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(error))
                if pinned_may_pass(&error) && self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.insecure {
            return Ok(HandshakeSignatureValid::assertion());
        }
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.insecure {
            return Ok(HandshakeSignatureValid::assertion());
        }
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn pinned_may_pass(error: &CertificateError) -> bool {
    match error {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(other) => is_ca_used_as_end_entity(other),
        _ => false,
    }
}

fn is_ca_used_as_end_entity(other: &rustls::OtherError) -> bool {
    matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
}

/// The rustls error in an error chain (ureq wraps it directly or inside an I/O error).
fn find_rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(ureq::Error::Rustls(found)) = e.downcast_ref::<ureq::Error>() {
            return Some(found);
        }
        if let Some(ureq::Error::Io(io)) = e.downcast_ref::<ureq::Error>() {
            if let Some(found) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(found);
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(found) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// A rustls error in words: its Display, except where that is a Debug rendering.
fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::EndEntityUsedAsCa) => "a certificate that is not a CA signed another one".into(),
                Some(webpki::Error::PathLenConstraintViolated) => "its chain is longer than a CA allows".into(),
                Some(webpki::Error::NameConstraintViolation) => "it breaks its CA's name constraints".into(),
                Some(webpki::Error::MaximumPathDepthExceeded) => "its chain is too long".into(),
                Some(webpki::Error::UnsupportedCriticalExtension) => {
                    "it has a critical extension zeroimage does not know".into()
                }
                _ => "its chain is not valid".into(),
            }
        }
        rustls::Error::Other(_) => "an internal TLS error".into(),
        rustls::Error::General(message) => message.clone(),
        rustls::Error::AlertReceived(alert) => format!("the server reported {}", alert_words(*alert)),
        other => other.to_string(),
    }
}

fn alert_words(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::CertificateRequired => "that a client certificate is required",
        AlertDescription::BadCertificate => "a bad certificate",
        AlertDescription::UnknownCA => "that the certificate's CA is unknown to it",
        AlertDescription::CertificateUnknown => "that it could not accept the certificate",
        AlertDescription::UnsupportedCertificate => "an unsupported certificate",
        AlertDescription::CertificateExpired => "an expired certificate",
        AlertDescription::CertificateRevoked => "a revoked certificate",
        AlertDescription::AccessDenied => "that access is denied",
        AlertDescription::HandshakeFailure => "a handshake failure (no common TLS parameters)",
        AlertDescription::ProtocolVersion => "an unsupported TLS version",
        _ => "a TLS alert",
    }
}

/// Wraps the chained transport in TLS (for `https` URLs) with our own rustls configuration.
#[derive(Debug)]
struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host.to_string()).map_err(|_| ureq::Error::Tls("invalid server name"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_dir_pairs_certificates_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_host_dir(&dir.path().join("missing")).unwrap().cas.is_empty());
        std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
        std::fs::write(dir.path().join("b.crt"), "x").unwrap();
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        std::fs::write(dir.path().join("client.key"), "x").unwrap();
        let found = read_host_dir(dir.path()).unwrap();
        assert_eq!(found.cas, vec![dir.path().join("b.crt"), dir.path().join("ca.crt")]);
        assert_eq!(found.client, Some((dir.path().join("client.cert"), dir.path().join("client.key"))));

        std::fs::write(dir.path().join("domain.key"), "x").unwrap();
        let error = read_host_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("domain.key") && error.contains("domain.cert is missing"), "{error}");
        std::fs::remove_file(dir.path().join("client.key")).unwrap();
        std::fs::remove_file(dir.path().join("domain.key")).unwrap();
        let error = read_host_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("client.key is missing"), "{error}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let options = RegistryOptions { ca_certs: vec![path.clone()], ..Default::default() };
        let error = Tls::new("registry.example:5000", &options).unwrap_err();
        assert!(error.report().contains(&path.display().to_string()), "{}", error.report());
        assert!(error.report().contains("no PEM certificate"), "{}", error.report());
    }

    #[test]
    fn certificate_errors_are_worded_for_people() {
        let options = RegistryOptions::default();
        let tls = Tls::new("registry.example:5000", &options).unwrap();
        let cases: Vec<(rustls::Error, &str, &str)> = vec![
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "not signed by any CA zeroimage trusts",
                "--ca-cert",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
                    webpki::Error::CaUsedAsEndEntity,
                )))),
                "self-signed, CA:TRUE",
                "registry.example:5000/ca.crt",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "not valid for the name registry.example:5000",
                "subjectAltName",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "requires a client certificate",
                "client.cert",
            ),
        ];
        for (error, reason, hint) in cases {
            let io = io::Error::new(io::ErrorKind::InvalidData, error);
            let wrapped = ureq::Error::Io(io);
            let explained = tls.explain("https://registry.example:5000/v2/", &wrapped).expect("a TLS error");
            let report = explained.report();
            assert!(report.contains(reason), "{report}");
            assert!(report.contains(hint), "{report}");
            assert!(!report.contains("Other(") && !report.contains("OtherError"), "{report}");
            assert_eq!(explained.kind(), crate::ErrorKind::Network);
        }
        let not_tls = ureq::Error::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        assert!(tls.explain("https://registry.example:5000/v2/", &not_tls).is_none());
    }
}
