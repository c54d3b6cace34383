//! Entry points for the fuzz targets in `fuzz/` (not part of the API: hidden, unstable).
//!
//! Each function feeds outside input to one parser the way zeroimage does, and returns
//! nothing: the fuzzer looks for panics, aborts, hangs and unbounded memory. Errors are the
//! expected outcome for most inputs; every error must still render.

use crate::base::manifest::{self, Document, Store};
use crate::base::{Base, ResolvedBase};
use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::layer::{BlobSource, Layer};
use crate::platform::Platform;
use crate::registry::RegistryOptions;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn render<T>(result: Result<T>) {
    if let Err(e) = result {
        let _ = (e.report(), e.kind(), e.hint());
    }
}

/// Image references (`registry/repo:tag@digest`): parse, print, parse again.
pub fn reference(data: &[u8]) {
    let input = text(data);
    if let Ok(reference) = input.parse::<crate::Reference>() {
        let again: crate::Reference = reference.to_string().parse().expect("a printed reference parses");
        assert_eq!(again, reference, "{input:?} does not round-trip");
        let _ = (reference.familiar(), reference.tag());
    } else {
        render(input.parse::<crate::Reference>());
    }
}

/// Platforms (`os/arch[/variant]`): parse, print, parse again.
pub fn platform(data: &[u8]) {
    let input = text(data);
    match input.parse::<Platform>() {
        Ok(platform) => {
            let again: Platform = platform.to_string().parse().expect("a printed platform parses");
            assert_eq!(again, platform, "{input:?} does not round-trip");
        }
        Err(e) => render::<()>(Err(e)),
    }
}

/// The strings of build options: `--env` / `--label` / `--annotation` (`KEY=VALUE`), `--creds`,
/// `--from` and `-o` transports, `--compression`.
pub fn option_strings(data: &[u8]) {
    let input = text(data);
    render(crate::parse_key_value("env", &input));
    render(input.parse::<crate::registry::Credentials>());
    if let Ok(base) = input.parse::<Base>() {
        assert_eq!(base.to_string().parse::<Base>().ok(), Some(base.clone()), "{input:?} does not round-trip");
    }
    render(input.parse::<crate::Sink>());
    render(input.parse::<crate::CompressionAlgorithm>());
}

/// Documents keyed by their digest: what a registry or a layout would serve.
struct Documents {
    by_digest: HashMap<String, Vec<u8>>,
}

impl Store for Documents {
    fn name(&self) -> String {
        "fuzz".into()
    }

    fn manifest(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>> {
        let bytes = self.by_digest.get(digest).cloned().ok_or_else(|| Error::BaseNotFound {
            base: "fuzz".into(),
            what: digest.into(),
            hint: None,
        })?;
        manifest::verify(|| digest.to_string(), &bytes, digest, size)?;
        Ok(bytes)
    }

    fn blob(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        self.manifest(digest, Some(size))
    }

    fn layer_source(&self, _digest: &str, _size: u64) -> Result<BlobSource> {
        Ok(BlobSource::Memory { name: Arc::from(Path::new("fuzz")), bytes: Arc::from(&b""[..]) })
    }
}

/// Split the input into documents at lines holding only `---`.
fn documents(data: &[u8]) -> Vec<Vec<u8>> {
    let mut docs = vec![Vec::new()];
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line == b"---\n" {
            docs.push(Vec::new());
        } else {
            docs.last_mut().expect("never empty").extend_from_slice(line);
        }
    }
    docs
}

/// Index and manifest JSON (registry and layout bases): the first document is the root
/// (an index or a manifest), the others are served by digest (manifests, configs).
pub fn manifest_json(data: &[u8]) {
    let docs = documents(data);
    let by_digest = docs.iter().skip(1).map(|d| (sha256_digest(d), d.clone())).collect();
    let store = Documents { by_digest };
    let root = Document { bytes: docs[0].clone(), digest: sha256_digest(&docs[0]), media_type: None };
    for platform in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        render(manifest::resolve(&store, root.clone(), &platform.parse().expect("a valid platform")));
    }
}

/// Write `files` as a tar to a temporary file (what a base archive is).
fn temp_archive(files: &[(String, Vec<u8>)]) -> tempfile::NamedTempFile {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        if builder.append_data(&mut header, name, &bytes[..]).is_err() {
            continue;
        }
    }
    let bytes = builder.into_inner().expect("tar in memory");
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(&bytes).expect("write a temporary file");
    file
}

/// Docker's `manifest.json` (`docker-archive:` bases): the first document is `manifest.json`,
/// the others are files named by their digest (`<hex>.json`, and `blobs/sha256/<hex>`).
pub fn docker_manifest_json(data: &[u8]) {
    let docs = documents(data);
    let mut files = vec![("manifest.json".to_string(), docs[0].clone())];
    for doc in &docs[1..] {
        let hex = sha256_digest(doc)[7..].to_string();
        files.push((format!("{hex}.json"), doc.clone()));
        files.push((format!("blobs/sha256/{hex}"), doc.clone()));
    }
    let archive = temp_archive(&files);
    let base = Base::DockerArchive { path: archive.path().to_path_buf(), name: None };
    render(base.resolve(&"linux/amd64".parse().expect("valid"), &RegistryOptions::default()));
}

/// The tar reader of base archives (`oci-archive:` bases: the index of entries, hostile
/// names and links) and of base layers (the interpreter look-up, whiteouts, links).
pub fn tar(data: &[u8]) {
    // As a layer: the look-up reads every entry.
    let digest = sha256_digest(data);
    let layer = Layer {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: digest.clone(),
        size: data.len() as u64,
        diff_id: digest,
        source: BlobSource::Memory { name: Arc::from(Path::new("fuzz-layer")), bytes: Arc::from(data) },
    };
    let mut base = ResolvedBase {
        config: serde_json::json!({}),
        layers: vec![layer.clone(), layer],
        format: crate::Format::Oci,
        name: None,
        digest: None,
    };
    let scratch = std::env::temp_dir();
    for path in ["/lib64/ld-linux-x86-64.so.2", "/a/b/../c", "/"] {
        render(crate::base::tree::has_file(&mut base.layers, path, &scratch, &crate::CancelToken::new()));
    }
    // As a base archive: indexed, then read as an OCI layout.
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(data).expect("write a temporary file");
    let base = Base::OciArchive { path: file.path().to_path_buf(), tag: None };
    render(base.resolve(&"linux/amd64".parse().expect("valid"), &RegistryOptions::default()));
}

/// The ELF reader (the program's architecture, interpreter and kind).
pub fn elf(data: &[u8]) {
    if let Ok(kind) = crate::elf::inspect(&mut std::io::Cursor::new(data)) {
        let _ = format!("{kind:?}");
    }
}

/// `WWW-Authenticate` headers, and the token realm rule applied to what they name.
pub fn www_authenticate(data: &[u8]) {
    crate::registry::fuzz_challenge(&text(data));
}

/// A credential helper's answer to `get`, and Docker / podman config files.
pub fn credentials(data: &[u8]) {
    let input = text(data);
    render(crate::registry::keychain::parse_get_answer("docker-credential-fuzz", &input));
    for registry in ["docker.io", "reg.example.com:5000", "localhost"] {
        render(crate::registry::keychain::parse_config_for(data, Path::new("config.json"), registry));
    }
}

/// Redaction of outside text, and `Retry-After` values.
pub fn outside_text(data: &[u8]) {
    let input = text(data);
    let redacted = crate::redact::redact(&input, &["hunter2-secret"]);
    assert!(!redacted.contains("hunter2-secret"), "a known secret survived: {redacted:?}");
    crate::registry::fuzz_retry_after(&input);
}
