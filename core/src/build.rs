//! `build_image`: base + program → image → sinks.

use crate::base::Base;
use crate::cancel::CancelToken;
use crate::config::{self, ConfigChanges};
use crate::convert::{output_images, OutputImages, Parts};
use crate::elf::{self, ProgramKind};
use crate::error::{Error, Result};
use crate::image::Format;
use crate::layer::{write_layer, Compression, Owner};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::RegistryOptions;
use crate::sink::{Sink, WriteContext};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

/// A progress callback. Called from the thread running the build.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What a build is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Reading, archiving and compressing the program into its layer.
    Layer,
    /// Writing the image to an output.
    Write,
}

impl Stage {
    /// The stable lowercase name (`layer`, `write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Layer => "layer",
            Stage::Write => "write",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A progress event: `current` of `total` bytes done in `stage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub stage: Stage,
    /// Bytes done so far.
    pub current: u64,
    /// Bytes to do, when known.
    pub total: Option<u64>,
}

/// Everything about a build besides base, program, platform and outputs. `Default` gives the
/// CLI's defaults.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Where the program goes in the image (`--path`); default `/<file name>`.
    pub path: Option<String>,
    /// Arguments after the entrypoint: the config's `Cmd`.
    pub args: Vec<String>,
    /// Environment variables, merged over the base's by name.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub workdir: Option<String>,
    /// The user (`name`, `uid`, `uid:gid`).
    pub user: Option<String>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Names for the image (`--tag`): written into archives' `RepoTags` and `index.json`.
    /// When empty, archives name the image `<program name>:latest` if that is a valid name.
    pub tags: Vec<Reference>,
    /// Build even if a dynamically linked program's interpreter is not in the base.
    pub allow_dynamic: bool,
    /// Timestamp for the config, history and file mtimes; default `$SOURCE_DATE_EPOCH`, else 0.
    pub source_date_epoch: Option<u64>,
    /// Media types of the output; default follows the base (OCI for scratch).
    pub format: Option<Format>,
    /// How the program's layer is compressed.
    pub compression: Compression,
    /// Rules to check the image against before anything is written (`--profile lambda`):
    /// every violation is reported at once, as [`Error::ProfileViolations`].
    pub profile: Option<crate::lambda::Profile>,
    /// Called as the build advances.
    pub progress: Option<ProgressFn>,
    /// Set it to stop the build; nothing is written then.
    pub cancel: CancelToken,
    /// How to reach registries (TLS, plain HTTP, credentials) for registry bases.
    pub registry: RegistryOptions,
}

impl fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildOptions")
            .field("path", &self.path)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("workdir", &self.workdir)
            .field("user", &self.user)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("tags", &self.tags)
            .field("allow_dynamic", &self.allow_dynamic)
            .field("source_date_epoch", &self.source_date_epoch)
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("profile", &self.profile)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("cancel", &self.cancel)
            .field("registry", &self.registry)
            .finish()
    }
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// The manifest digest (`sha256:…`) of the first output: the image's identity there (see
    /// [`digests`](Self::digests) for every output's).
    pub digest: String,
    /// The config digest: Docker's image ID (the same for every output).
    pub config_digest: String,
    /// Bytes of the first output's image as stored: manifest, config and every layer.
    pub size: u64,
    /// The image's platform.
    pub platform: Platform,
    /// Every output written, as transport strings (`oci-archive:hello.tar`).
    pub outputs: Vec<String>,
    /// The manifest digest each of [`outputs`](Self::outputs) holds, in the same order.
    /// Archives, layouts and the Docker engine get OCI media types; a push keeps the base's
    /// format (or `--format`) and gzips uncompressed base layers, so its digest can differ.
    /// [`digest`](Self::digest) is the first output's.
    pub digests: Vec<String>,
    /// The names given to the image.
    pub tags: Vec<String>,
    /// Every registry push, as `registry/repository@sha256:…`.
    pub pushed: Vec<String>,
}

impl BuildResult {
    /// The result of writing `images` to `sinks` under `tags`.
    pub(crate) fn new(images: &OutputImages, platform: Platform, sinks: &[Sink], tags: &[Reference]) -> BuildResult {
        let first = images.for_sink(&sinks[0]);
        BuildResult {
            digest: first.manifest_digest.clone(),
            config_digest: first.config_digest.clone(),
            size: first.size(),
            platform,
            outputs: sinks.iter().map(Sink::to_string).collect(),
            digests: sinks.iter().map(|sink| images.for_sink(sink).manifest_digest.clone()).collect(),
            tags: tags.iter().map(Reference::to_string).collect(),
            pushed: sinks
                .iter()
                .filter_map(|sink| match sink {
                    Sink::Registry { reference } => {
                        Some(format!("{}@{}", reference.name(), images.for_sink(sink).manifest_digest))
                    }
                    _ => None,
                })
                .collect(),
        }
    }
}

/// Build an image of `entrypoint` on `base` for `platform` (default: the program's own
/// architecture) and write it to every sink in `sinks`.
///
/// Nothing is written unless the whole image could be built: every input is checked first,
/// and each output appears atomically.
pub fn build_image(
    base: &Base,
    entrypoint: &Path,
    platform: Option<&Platform>,
    sinks: &[Sink],
    options: &BuildOptions,
) -> Result<BuildResult> {
    if sinks.is_empty() {
        return Err(Error::InvalidOption { option: "output", value: String::new(), reason: "no output given".into() });
    }
    let epoch = source_date_epoch(options)?;
    let path_in_image = path_in_image(entrypoint, options.path.as_deref())?;
    check_options(options)?;
    crate::convert::check_format(options.format, sinks)?;

    // The program: a regular, readable ELF executable for the platform.
    let meta = fs::metadata(entrypoint).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ProgramNotFound { path: entrypoint.to_path_buf() },
        _ => Error::io("read", entrypoint, e),
    })?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a file" };
        return Err(Error::ProgramNotFile { path: entrypoint.to_path_buf(), what });
    }
    let mut file = File::open(entrypoint).map_err(|e| Error::io("open", entrypoint, e))?;
    let kind = elf::inspect(&mut file).map_err(|e| Error::io("read", entrypoint, e))?;
    let info = match kind {
        ProgramKind::Elf(info) if info.is_executable() => info,
        ProgramKind::Elf(_) => return Err(not_runnable(entrypoint, "it is an ELF object file or core dump, not an executable", "link it into an executable first")),
        ProgramKind::Script(interp) => {
            return Err(not_runnable(
                entrypoint,
                &format!("it is a script (#!{interp}) and the {base} image has no interpreter to run it"),
                "package a compiled static executable, or build on a base that contains the interpreter",
            ))
        }
        ProgramKind::Unknown => {
            return Err(not_runnable(
                entrypoint,
                "it is not an ELF executable",
                "package a Linux executable (an ELF binary), e.g. built with CGO_ENABLED=0 or --target x86_64-unknown-linux-musl",
            ))
        }
    };
    let platform = match (platform, info.architecture()) {
        (Some(p), Some((arch, _))) if p.architecture() != arch => {
            return Err(Error::ArchitectureMismatch {
                path: entrypoint.to_path_buf(),
                program_arch: arch.to_string(),
                platform: p.to_string(),
            })
        }
        (Some(p), _) => p.clone(),
        (None, Some((arch, variant))) => Platform::new("linux", arch, variant)?,
        (None, None) => {
            return Err(Error::InvalidPlatform {
                input: info.machine_name(),
                reason: format!("cannot tell the platform of {}; pass --platform", entrypoint.display()),
            })
        }
    };

    let mut resolved = base.resolve(&platform, &options.registry)?;
    if let Some(interpreter) = &info.interpreter {
        if !options.allow_dynamic && !resolved.has_file(interpreter, &sinks[0].scratch_dir())? {
            return Err(Error::DynamicProgram {
                path: entrypoint.to_path_buf(),
                interpreter: interpreter.clone(),
                base: base.to_string(),
            });
        }
    }
    for sink in sinks {
        sink.preflight()?;
    }
    // The program's layer is written in the push format (archives get the same bytes with OCI
    // media types).
    let format = options.format.unwrap_or(resolved.format);

    // The program's layer, in one pass, next to the first output.
    let report = |stage: Stage, current: u64, total: u64| {
        if let Some(progress) = &options.progress {
            progress(&Progress { stage, current, total: Some(total) });
        }
    };
    let size = meta.len();
    let tar_path = path_in_image.trim_start_matches('/').to_string();
    let mut layer = write_layer(
        &sinks[0].scratch_dir(),
        options.compression.media_type(format),
        &options.compression,
        epoch,
        |tar| {
            let root = Owner { uid: 0, gid: 0, mode: 0o755 };
            let parts: Vec<&str> = tar_path.split('/').collect();
            for i in 1..parts.len() {
                tar.dir(&format!("{}/", parts[..i].join("/")), root)
                    .map_err(|e| Error::io("write layer for", entrypoint, e))?;
            }
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(0)).map_err(|e| Error::io("read", entrypoint, e))?;
            report(Stage::Layer, 0, size);
            tar.file(&tar_path, root, size, &mut file, entrypoint, &options.cancel, |n| report(Stage::Layer, n, size))
        },
    )?;

    // The config and manifest.
    let mut config = resolved.config;
    let created = config::rfc3339(epoch);
    let program_name = entrypoint.file_name().map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
    config::apply(
        &mut config,
        &ConfigChanges {
            platform: &platform,
            entrypoint: vec![path_in_image.clone()],
            cmd: (!options.args.is_empty()).then_some(&options.args[..]),
            env: &options.env,
            user: options.user.as_deref(),
            workdir: options.workdir.as_deref(),
            labels: &options.labels,
            diff_id: &layer.diff_id,
            created: &created,
            created_by: format!("zeroimage {}: COPY {program_name} {path_in_image}", crate::VERSION),
        },
    )?;
    if let Some(crate::lambda::Profile::Lambda) = options.profile {
        // The check reads every layer; registry layers are kept locally for the outputs.
        resolved.layers.push(layer);
        let checked = crate::lambda::check_lambda(&mut crate::lambda::Candidate {
            platform: &platform,
            config: &config,
            layers: &mut resolved.layers,
            own_layer: true,
            max_uncompressed: crate::lambda::LAMBDA_MAX_UNCOMPRESSED,
            scratch: &sinks[0].scratch_dir(),
        });
        layer = resolved.layers.pop().expect("pushed above");
        checked?;
    }
    // The base's name and digest, then the caller's annotations (which win).
    let mut annotations = BTreeMap::new();
    if let Some(name) = resolved.name {
        annotations.insert("org.opencontainers.image.base.name".to_string(), name);
    }
    if let Some(digest) = resolved.digest {
        annotations.insert("org.opencontainers.image.base.digest".to_string(), digest);
    }
    annotations.extend(options.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    let images = output_images(
        sinks,
        Parts {
            platform: &platform,
            config: &config,
            base_layers: resolved.layers,
            own: Some(layer),
            annotations: &annotations,
            push_format: format,
            compression: &options.compression,
            scratch: &sinks[0].scratch_dir(),
        },
    )?;

    let tags = if options.tags.is_empty() { default_names(entrypoint) } else { options.tags.clone() };
    let ctx = WriteContext {
        tags: &tags,
        mtime: epoch,
        cancel: &options.cancel,
        progress: options.progress.as_ref(),
        registry: &options.registry,
    };
    write_outputs(sinks, &images, &ctx)?;
    Ok(BuildResult::new(&images, platform, sinks, &tags))
}

/// Write each image to the sinks that get it: local outputs first, then pushes.
pub(crate) fn write_outputs(sinks: &[Sink], images: &OutputImages, ctx: &WriteContext<'_>) -> Result<()> {
    let (pushes, local): (Vec<Sink>, Vec<Sink>) = sinks.iter().cloned().partition(crate::convert::is_push);
    if let Some(image) = &images.local {
        crate::sink::write_all(&local, image, ctx)?;
    }
    if let Some(image) = &images.push {
        crate::sink::write_all(&pushes, image, ctx)?;
    }
    Ok(())
}

fn not_runnable(path: &Path, reason: &str, hint: &str) -> Error {
    Error::ProgramNotRunnable { path: path.to_path_buf(), reason: reason.to_string(), hint: hint.to_string() }
}

/// `SOURCE_DATE_EPOCH` from the options, else the environment, else 0.
fn source_date_epoch(options: &BuildOptions) -> Result<u64> {
    if let Some(epoch) = options.source_date_epoch {
        return Ok(epoch);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| Error::InvalidOption {
            option: "SOURCE_DATE_EPOCH",
            value,
            reason: "expected whole seconds since 1970-01-01".into(),
        }),
        _ => Ok(0),
    }
}

/// The absolute, normalised path of the program inside the image.
fn path_in_image(entrypoint: &Path, path: Option<&str>) -> Result<String> {
    let path = match path {
        Some(p) => p.to_string(),
        None => {
            let name = entrypoint.file_name().ok_or_else(|| Error::ProgramNotFile {
                path: entrypoint.to_path_buf(),
                what: "a path without a file name",
            })?;
            format!("/{}", name.to_string_lossy())
        }
    };
    let bad = |reason: &str| Error::InvalidOption { option: "path", value: path.clone(), reason: reason.to_string() };
    if !path.starts_with('/') {
        return Err(bad("it must be absolute, e.g. /app/server"));
    }
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(bad("it must name a file, without empty, '.' or '..' parts"));
    }
    if path.len() > 255 || path.chars().any(char::is_control) {
        return Err(bad("it is longer than 255 bytes or has control characters"));
    }
    Ok(path)
}

fn check_options(options: &BuildOptions) -> Result<()> {
    for (key, value) in &options.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(Error::InvalidOption {
                option: "env",
                value: format!("{key}={value}"),
                reason: "the name must be non-empty and contain no '='".into(),
            });
        }
    }
    for key in options.labels.keys().chain(options.annotations.keys()) {
        if key.is_empty() {
            return Err(Error::InvalidOption {
                option: "label",
                value: key.clone(),
                reason: "the key is empty".into(),
            });
        }
    }
    if let Some(user) = &options.user {
        if user.is_empty() || user.contains(char::is_whitespace) {
            return Err(Error::InvalidOption {
                option: "user",
                value: user.clone(),
                reason: "expected a name, uid or uid:gid".into(),
            });
        }
    }
    if let Some(workdir) = &options.workdir {
        if !workdir.starts_with('/') {
            return Err(Error::InvalidOption {
                option: "workdir",
                value: workdir.clone(),
                reason: "it must be an absolute path".into(),
            });
        }
    }
    options.compression.validate()
}

/// `<program name>:latest`, lowercased, when that is a valid image name.
fn default_names(entrypoint: &Path) -> Vec<Reference> {
    let name = entrypoint.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    name.parse::<Reference>().ok().filter(|r| r.tag() == Some("latest") && r.digest().is_none()).into_iter().collect()
}

/// Parse `KEY=VALUE` (for `--env`, `--label`, `--annotation`).
pub fn parse_key_value(option: &'static str, input: &str) -> Result<(String, String)> {
    match input.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::InvalidOption { option, value: input.to_string(), reason: "expected KEY=VALUE".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths() {
        let p = Path::new("./dist/hello");
        assert_eq!(path_in_image(p, None).unwrap(), "/hello");
        assert_eq!(path_in_image(p, Some("/app/x")).unwrap(), "/app/x");
        for bad in ["app/x", "/", "/app/", "/a/../b", "/a//b", "/./a"] {
            assert!(path_in_image(p, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_key_value("env", "A=").unwrap(), ("A".into(), "".into()));
        assert!(parse_key_value("env", "A").is_err());
        assert!(parse_key_value("env", "=b").is_err());
    }

    #[test]
    fn default_names_from_program() {
        assert_eq!(default_names(Path::new("./hello"))[0].to_string(), "docker.io/library/hello:latest");
        assert_eq!(default_names(Path::new("./Hello"))[0].familiar(), "hello:latest");
        assert!(default_names(Path::new("./he llo")).is_empty());
        assert!(default_names(Path::new("./x:y")).is_empty());
    }
}
