//! Registry TLS the Docker way, against the real registry (distribution 2.8 with `http.tls`):
//! CAs and client certificates from `certs.d/<host:port>/` (pointed at a test directory with
//! `ZEROIMAGE_CERTS_D`), self-signed CA:TRUE certificates made with Docker's recipe, mutual TLS
//! (`http.tls.clientcas`), and certificate errors in words. Every push is checked with skopeo,
//! which trusts the same files through `--cert-dir`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use zeroimage_tests::oci::skopeo_inspect_with;
use zeroimage_tests::{exec, exec_ok, scratch_dir, static_hello, zeroimage_cmd, OutputExt, Registry, RegistryOptions};

/// A private home, a hello program, and a `certs.d` root of our own.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let setup = Setup { dir: scratch_dir() };
        fs::create_dir_all(setup.certs_d()).unwrap();
        fs::create_dir_all(setup.dir.path().join("docker")).unwrap();
        setup
    }

    fn certs_d(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// `certs.d/<host:port>/`, created.
    fn host_dir(&self, registry: &Registry) -> PathBuf {
        let dir = self.certs_d().join(registry.addr());
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `zeroimage build hello --push REGISTRY/REPO` with only our certs.d root, no
    /// `SSL_CERT_FILE`, and a private home.
    fn push(&self, registry: &Registry, repo: &str, extra: &[&str]) -> Output {
        let hello = static_hello(self.dir.path());
        let mut cmd: Command = zeroimage_cmd();
        cmd.env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("ZEROIMAGE_CERTS_D", self.certs_d())
            .env_remove("SSL_CERT_FILE")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR");
        exec(cmd.arg("build").arg(hello).args(["--push", &registry.image(repo)]).args(extra))
    }
}

/// The digest a push printed (`REF@DIGEST`).
fn pushed_digest(out: &Output) -> String {
    let line = out.stdout_text().lines().next().expect("a pushed line").to_string();
    line.rsplit_once('@').expect("REF@DIGEST").1.to_string()
}

/// skopeo, trusting the registry through `--cert-dir`, sees the pushed digest.
fn assert_skopeo_sees(registry: &Registry, repo: &str, digest: &str) {
    let inspect = skopeo_inspect_with(&registry.flags(), &format!("docker://{}", registry.image(repo)));
    assert_eq!(inspect["Digest"].as_str(), Some(digest), "{inspect}");
}

fn assert_human(out: &Output) {
    let stderr = out.stderr_text();
    for debug in ["Other(", "OtherError", "InvalidCertificate", "AlertReceived", "CaUsedAsEndEntity"] {
        assert!(!stderr.contains(debug), "a Debug rendering in: {stderr}");
    }
}

#[test]
fn a_ca_signed_leaf_is_trusted_through_certs_d_and_only_for_its_host() {
    let registry = RegistryOptions::default().tls().start();
    let setup = Setup::new();

    // The CA filed under another host:port does not count for this one.
    let other = setup.certs_d().join("127.0.0.1:1");
    fs::create_dir_all(&other).unwrap();
    fs::copy(registry.ca_cert().unwrap(), other.join("ca.crt")).unwrap();
    let refused = setup.push(&registry, "certsd/hello:1", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr_text());
    assert!(refused.stderr_text().contains("not signed by any CA zeroimage trusts"), "{}", refused.stderr_text());

    fs::copy(registry.ca_cert().unwrap(), setup.host_dir(&registry).join("ca.crt")).unwrap();
    let out = setup.push(&registry, "certsd/hello:1", &[]);
    out.assert_success("push trusting certs.d/<host:port>/ca.crt");
    assert_skopeo_sees(&registry, "certsd/hello:1", &pushed_digest(&out));
}

#[test]
fn a_self_signed_ca_certificate_is_accepted_when_trusted_explicitly() {
    let registry = RegistryOptions::default().self_signed_tls().start();
    let setup = Setup::new();
    let cert = registry.ca_cert().unwrap(); // the server's own certificate
    let text = exec_ok(Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(cert)).stdout_text();
    assert!(text.contains("CA:TRUE"), "Docker's recipe makes a CA:TRUE certificate: {text}");

    // Not trusted: refused, in words, naming what to pass.
    let refused = setup.push(&registry, "selfsigned/hello:1", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr_text());
    let stderr = refused.stderr_text();
    assert!(stderr.contains("self-signed, CA:TRUE"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    assert!(stderr.contains(&format!("certs.d/{}/ca.crt", registry.addr())), "{stderr}");
    assert_human(&refused);

    // Trusting some other self-signed certificate changes nothing: full verification stays.
    let stranger = setup.dir.path().join("stranger.crt");
    exec_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(setup.dir.path().join("stranger.key"))
            .arg("-out")
            .arg(&stranger),
    );
    let refused = setup.push(&registry, "selfsigned/hello:1", &["--ca-cert", stranger.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr_text());
    assert_human(&refused);

    // --ca-cert with the certificate itself.
    let out = setup.push(&registry, "selfsigned/hello:1", &["--ca-cert", cert.to_str().unwrap()]);
    out.assert_success("push trusting the self-signed certificate with --ca-cert");
    assert_skopeo_sees(&registry, "selfsigned/hello:1", &pushed_digest(&out));

    // certs.d with the certificate itself (as Docker's guide files it: certs.d/HOST:PORT/ca.crt).
    fs::copy(cert, setup.host_dir(&registry).join("ca.crt")).unwrap();
    let out = setup.push(&registry, "selfsigned/hello:2", &[]);
    out.assert_success("push trusting the self-signed certificate in certs.d");
    assert_skopeo_sees(&registry, "selfsigned/hello:2", &pushed_digest(&out));

    // A base pulled from there works the same way.
    let out = setup.push(&registry, "selfsigned/hello:3", &["--from", &registry.image("selfsigned/hello:2")]);
    out.assert_success("build from a base on the self-signed registry");
}

#[test]
fn mutual_tls_offers_the_client_certificate_from_certs_d() {
    let registry = RegistryOptions::default().mutual_tls().start();
    let setup = Setup::new();
    let host_dir = setup.host_dir(&registry);
    fs::copy(registry.ca_cert().unwrap(), host_dir.join("ca.crt")).unwrap();

    // Without a client certificate the registry refuses the connection; we say what to add.
    let refused = setup.push(&registry, "mtls/hello:1", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr_text());
    let stderr = refused.stderr_text();
    assert!(stderr.contains("requires a client certificate"), "{stderr}");
    assert!(stderr.contains(&format!("{}/client.cert", host_dir.display())), "{stderr}");
    assert_human(&refused);

    let (cert, key) = registry.client_cert().unwrap();
    fs::copy(cert, host_dir.join("client.cert")).unwrap();
    fs::copy(key, host_dir.join("client.key")).unwrap();
    let out = setup.push(&registry, "mtls/hello:1", &["--verbose"]);
    out.assert_success("push with a client certificate from certs.d");
    assert!(out.stderr_text().contains("client.cert"), "--verbose names the client certificate: {}", out.stderr_text());
    assert_skopeo_sees(&registry, "mtls/hello:1", &pushed_digest(&out));

    // A key without its certificate is a mistake we name, before any connection.
    fs::remove_file(host_dir.join("client.cert")).unwrap();
    let out = setup.push(&registry, "mtls/hello:2", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("client.cert is missing"), "{}", out.stderr_text());
}

#[test]
fn an_untrusted_certificate_is_refused_with_the_files_to_pass() {
    let registry = RegistryOptions::default().tls().start();
    let setup = Setup::new();
    let out = setup.push(&registry, "untrusted/hello:1", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    let stderr = out.stderr_text();
    assert!(stderr.contains(&format!("cannot reach https://{}/v2/", registry.addr())), "{stderr}");
    assert!(stderr.contains("not signed by any CA zeroimage trusts"), "{stderr}");
    assert!(stderr.contains("hint:") && stderr.contains("--ca-cert FILE"), "{stderr}");
    assert!(stderr.contains("ZEROIMAGE_CERTS_D"), "{stderr}");
    assert_human(&out);
    // Nothing reached the registry's storage.
    let repositories = registry.storage_dir().join("docker/registry/v2/repositories");
    assert!(!repositories.join("untrusted").exists());
}
