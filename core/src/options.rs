//! One schema for every build option, shared by the CLI, Python and Node.
//!
//! [`BuildSpec`] holds the options under the CLI's names and defaults. The CLI flattens it into
//! its `build` arguments (clap), Python converts its keyword arguments into it, and Node
//! deserialises its options object into it (camelCase keys), both through
//! [`BuildSpec::from_json`], which rejects unknown keys naming the nearest valid one and wrong
//! shapes naming the option. [`BuildSpec::into_request`] then parses every string (base,
//! outputs, platform, references) and checks every bound, in one place. Adding an option means
//! adding a field here (and its line in the `.pyi` and `index.d.ts` docs).

use crate::add::Add;
use crate::base::Base;
use crate::build::{BuildOptions, ProgramSpec};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::media_type::Format;
use crate::platform::Platform;
use crate::progress::ProgressFn;
use crate::registry::{Credentials, Logger, RegistryOptions};
use crate::sink::Sink;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The largest `jobs`: more threads than this only cost memory.
pub const MAX_JOBS: i64 = 256;
/// The largest `timeout`, in seconds (one day).
pub const MAX_TIMEOUT: f64 = 86_400.0;
/// The latest `SOURCE_DATE_EPOCH`: 9999-12-31T23:59:59Z, the last time RFC 3339 and Go can write.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// Which front end a caller uses: errors and hints name options the way it spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Frontend {
    /// `--allow-dynamic`
    #[default]
    Cli,
    /// `allow_dynamic=True`
    Python,
    /// `allowDynamic: true`
    Node,
}

impl Frontend {
    /// How this front end spells the option whose schema name is `name` (snake_case).
    pub fn option(self, name: &str) -> String {
        match self {
            Frontend::Cli => format!("--{}", cli_flag(name).replace('_', "-")),
            Frontend::Python => name.to_string(),
            Frontend::Node => camel(name),
        }
    }

    /// `text` (an error message or hint written with CLI flags) with every `--flag` of the
    /// build schema spelled this front end's way: `--allow-dynamic` becomes
    /// `allow_dynamic=True` (Python) or `allowDynamic: true` (Node).
    pub fn spell(self, text: &str) -> String {
        if self == Frontend::Cli {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("--") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(after.len());
            let flag = &after[..len];
            match field_of_flag(flag) {
                Some(field) => {
                    let flag_like = FLAGS.contains(&field);
                    out.push_str(&match (self, flag_like) {
                        (Frontend::Python, true) => format!("{field}=True"),
                        (Frontend::Python, false) => format!("{field}="),
                        (_, true) => format!("{}: true", camel(field)),
                        (_, false) => format!("{}:", camel(field)),
                    });
                }
                None => {
                    out.push_str("--");
                    out.push_str(flag);
                }
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }
}

/// Schema fields that are on/off flags.
const FLAGS: [&str; 5] = ["allow_dynamic", "bundle_libs", "insecure", "add_follow_symlinks", "platform_tags"];

/// The CLI flag of a schema field where the two differ.
fn cli_flag(field: &str) -> &str {
    match field {
        "base" => "from",
        "tag" => "tag",
        other => other,
    }
}

fn field_of_flag(flag: &str) -> Option<&'static str> {
    let snake = flag.replace('-', "_");
    let snake = if snake == "from" { "base".to_string() } else { snake };
    FIELDS.iter().copied().find(|f| *f == snake)
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Every option of a build, under the CLI's names and with its defaults. See the crate README
/// for what each does; [`BuildSpec::into_request`] checks them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
// The field docs are also the CLI's help text, written for a terminal: `[:TAG]`, `<program>`.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
pub struct BuildSpec {
    /// The program to package (a Linux ELF executable; static for scratch images). Several programs (one per platform; PLATFORM=PATH where the ELF header cannot tell, e.g. linux/arm/v6=dist/server) make one multi-platform image index
    #[serde(alias = "entrypoint", alias = "programs", deserialize_with = "programs")]
    #[cfg_attr(feature = "cli", arg(value_name = "PROGRAM", required = true, num_args = 1..))]
    pub program: Vec<PathBuf>,

    /// Arguments to pass to the program: the image's Cmd
    #[cfg_attr(feature = "cli", arg(last = true, value_name = "ARGS"))]
    pub args: Vec<String>,

    /// Base image: scratch, builtin:static, REF or docker://REF (a registry), oci-archive:PATH[:NAME], oci:DIR[:NAME], docker-archive:PATH[:NAME]
    #[serde(alias = "from")]
    #[cfg_attr(feature = "cli", arg(long = "from", value_name = "BASE", default_value = "scratch"))]
    pub base: String,

    /// Base image from an OCI archive (the same as --from oci-archive:PATH)
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH", conflicts_with = "base"))]
    pub from_archive: Option<PathBuf>,

    /// Target platform os/arch[/variant] [default: the program's architecture]
    #[cfg_attr(feature = "cli", arg(long, value_name = "PLATFORM", conflicts_with_all = ["os", "arch", "variant"]))]
    pub platform: Option<String>,

    /// Target operating system (with --arch)
    #[cfg_attr(feature = "cli", arg(long, value_name = "OS"))]
    pub os: Option<String>,

    /// Target architecture
    #[cfg_attr(feature = "cli", arg(long, value_name = "ARCH"))]
    pub arch: Option<String>,

    /// Target architecture variant (with --arch)
    #[cfg_attr(feature = "cli", arg(long, value_name = "VARIANT", requires = "arch"))]
    pub variant: Option<String>,

    /// With several programs and --push: also tag each platform's image alone, as TAG-amd64, TAG-arm64, TAG-armv7 (AWS Lambda takes no index)
    #[cfg_attr(feature = "cli", arg(long))]
    pub platform_tags: bool,

    /// With several programs: the platform whose image an archive's manifest.json names, for Docker 20.10's docker load [default: linux/amd64, else the first]
    #[cfg_attr(feature = "cli", arg(long, value_name = "PLATFORM"))]
    pub docker_platform: Option<String>,

    /// Path of the program inside the image [default: /<program file name>]
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub path: Option<String>,

    /// Output: PATH or oci-archive:PATH (an OCI archive that docker load also reads), oci:DIR[:TAG], docker-daemon:NAME[:TAG] or docker://REF [default: <program>.tar, none with --push]
    #[cfg_attr(feature = "cli", arg(short, long, value_name = "OUTPUT"))]
    pub output: Option<String>,

    /// Push the image to a registry, REF or docker://REF (repeatable: blobs go up once, then every tag); prints REF@DIGEST for each
    #[serde(deserialize_with = "one_or_many")]
    #[cfg_attr(feature = "cli", arg(long = "push", value_name = "REF"))]
    pub push: Vec<String>,

    /// Name the image (repeatable): written to the archive for docker load, podman, containerd
    #[serde(alias = "tags", deserialize_with = "one_or_many")]
    #[cfg_attr(feature = "cli", arg(short, long = "tag", value_name = "NAME"))]
    pub tag: Vec<String>,

    /// Add files beside the program: SRC (a host file or directory) at DEST (absolute) in the image, in one layer below the program's (repeatable)
    #[serde(deserialize_with = "adds")]
    #[cfg_attr(feature = "cli", arg(long = "add", value_name = "SRC:DEST", value_parser = parse_add))]
    pub add: Vec<Add>,

    /// Owner UID[:GID] of the files --add puts in the image [default: 0:0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "UID[:GID]"))]
    pub add_owner: Option<String>,

    /// Copy what symlinks in an --add directory point to when they point outside it, instead of refusing them
    #[cfg_attr(feature = "cli", arg(long))]
    pub add_follow_symlinks: bool,

    /// Set an environment variable (repeatable)
    #[serde(deserialize_with = "key_values")]
    #[cfg_attr(feature = "cli", arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse_env))]
    pub env: Vec<(String, String)>,

    /// Working directory
    #[cfg_attr(feature = "cli", arg(short, long, value_name = "DIR"))]
    pub workdir: Option<String>,

    /// User to run as: name, uid or uid:gid
    #[cfg_attr(feature = "cli", arg(short, long, value_name = "USER"))]
    pub user: Option<String>,

    /// Add a config label (repeatable)
    #[serde(alias = "labels", deserialize_with = "key_values")]
    #[cfg_attr(feature = "cli", arg(short, long = "label", value_name = "KEY=VALUE", value_parser = parse_label))]
    pub label: Vec<(String, String)>,

    /// Add a manifest annotation (repeatable)
    #[serde(alias = "annotations", deserialize_with = "key_values")]
    #[cfg_attr(feature = "cli", arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_annotation))]
    pub annotation: Vec<(String, String)>,

    /// Build a dynamically linked program even if the base lacks its loader
    #[cfg_attr(feature = "cli", arg(long))]
    pub allow_dynamic: bool,

    /// Add the program's loader and shared libraries (from this machine, or --sysroot) as a layer below it
    #[cfg_attr(feature = "cli", arg(long))]
    pub bundle_libs: bool,

    /// Take bundled libraries from DIR, standing for the target's / (required for another architecture); implies --bundle-libs
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub sysroot: Option<PathBuf>,

    /// Also bundle a library the program only dlopens, by soname (repeatable); implies --bundle-libs
    #[serde(deserialize_with = "one_or_many")]
    #[cfg_attr(feature = "cli", arg(long = "bundle-lib", value_name = "SONAME"))]
    pub bundle_lib: Vec<String>,

    /// Check the image against a platform's rules before anything is written or pushed: lambda (AWS Lambda's container-image rules; every violation is listed)
    #[cfg_attr(feature = "cli", arg(long, value_name = "PROFILE"))]
    pub profile: Option<String>,

    /// Manifest and config media types: oci or docker [default: follow the base]
    #[cfg_attr(feature = "cli", arg(long, value_name = "FORMAT"))]
    pub format: Option<String>,

    /// Layer compression: gzip, zstd (smaller, faster; Docker 20.10 and AWS Lambda cannot read it) or none [default: gzip]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ALGORITHM"))]
    pub compression: Option<String>,

    /// Compression level: gzip 0-9 [default: 6], zstd 1-19 [default: 3]
    #[cfg_attr(feature = "cli", arg(long, value_name = "LEVEL", allow_negative_numbers = true))]
    pub compression_level: Option<i64>,

    /// Threads to compress with, 1-256 [default: the number of cores]; the output is the same whatever it is
    #[cfg_attr(feature = "cli", arg(short, long, value_name = "N", allow_negative_numbers = true))]
    pub jobs: Option<i64>,

    /// Timestamp (seconds since 1970, up to year 9999) of the config, history and file times [default: $SOURCE_DATE_EPOCH, else 0]
    #[cfg_attr(feature = "cli", arg(long, value_name = "SECONDS", allow_negative_numbers = true))]
    pub source_date_epoch: Option<i64>,

    /// Allow plain HTTP and unverified TLS for registries (loopback registries may always use HTTP)
    #[cfg_attr(feature = "cli", arg(long))]
    pub insecure: bool,

    /// Trust the CA certificates in this PEM file for registries (repeatable)
    #[serde(alias = "ca_certs", deserialize_with = "one_or_many")]
    #[cfg_attr(feature = "cli", arg(long = "ca-cert", value_name = "FILE"))]
    pub ca_cert: Vec<PathBuf>,

    /// Registry credentials USER:PASSWORD [default: stored by zeroimage/docker/podman login, else anonymous]
    #[cfg_attr(feature = "cli", arg(long, value_name = "USER:PASSWORD", hide_env_values = true))]
    pub creds: Option<String>,

    /// Seconds a registry request may make no progress before it is abandoned [default: 60]
    #[cfg_attr(feature = "cli", arg(long, value_name = "SECONDS", allow_negative_numbers = true))]
    pub timeout: Option<f64>,
}

/// The schema's field names (snake_case), for unknown-key checks and spelling.
const FIELDS: [&str; 36] = [
    "program",
    "args",
    "base",
    "from_archive",
    "platform",
    "platform_tags",
    "docker_platform",
    "os",
    "arch",
    "variant",
    "path",
    "output",
    "push",
    "tag",
    "add",
    "add_owner",
    "add_follow_symlinks",
    "env",
    "workdir",
    "user",
    "label",
    "annotation",
    "allow_dynamic",
    "bundle_libs",
    "sysroot",
    "bundle_lib",
    "profile",
    "format",
    "compression",
    "compression_level",
    "jobs",
    "source_date_epoch",
    "insecure",
    "ca_cert",
    "creds",
    "timeout",
];
/// Other accepted spellings (serde aliases).
const ALIASES: [&str; 7] = ["entrypoint", "programs", "from", "tags", "ca_certs", "labels", "annotations"];

impl Default for BuildSpec {
    fn default() -> Self {
        BuildSpec {
            program: Vec::new(),
            args: Vec::new(),
            base: "scratch".into(),
            from_archive: None,
            platform: None,
            platform_tags: false,
            docker_platform: None,
            os: None,
            arch: None,
            variant: None,
            path: None,
            output: None,
            push: Vec::new(),
            tag: Vec::new(),
            add: Vec::new(),
            add_owner: None,
            add_follow_symlinks: false,
            env: Vec::new(),
            workdir: None,
            user: None,
            label: Vec::new(),
            annotation: Vec::new(),
            allow_dynamic: false,
            bundle_libs: false,
            sysroot: None,
            bundle_lib: Vec::new(),
            profile: None,
            format: None,
            compression: None,
            compression_level: None,
            jobs: None,
            source_date_epoch: None,
            insecure: false,
            ca_cert: Vec::new(),
            creds: None,
            timeout: None,
        }
    }
}

/// A build, parsed and checked: what [`crate::build_image`] takes.
#[derive(Debug)]
pub struct BuildRequest {
    /// The base.
    pub base: Base,
    /// The first program.
    pub program: PathBuf,
    /// The first program's platform, when given.
    pub platform: Option<Platform>,
    /// Every program (one per platform) and its platform, when given.
    pub programs: Vec<ProgramSpec>,
    /// The outputs, in order.
    pub sinks: Vec<Sink>,
    /// Everything else.
    pub options: BuildOptions,
}

/// What a front end adds to a request beyond the schema: its callbacks and cancel token.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Stops the build.
    pub cancel: CancelToken,
    /// Progress events.
    pub progress: Option<ProgressFn>,
    /// The registry log (the CLI's `--verbose`).
    pub log: Option<Logger>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").field("cancel", &self.cancel).finish_non_exhaustive()
    }
}

impl BuildSpec {
    /// Read a spec from JSON-like `value` (Python's keyword arguments, Node's options object):
    /// keys in `frontend`'s spelling; an unknown key or a wrong shape is an `invalid_input`
    /// error naming it (and the nearest valid key).
    pub fn from_json(value: serde_json::Value, frontend: Frontend) -> Result<BuildSpec> {
        let serde_json::Value::Object(map) = value else {
            return Err(Error::InvalidOption {
                option: "options",
                value: short(&value),
                reason: "expected an object of options".into(),
            });
        };
        let mut normalised = serde_json::Map::new();
        for (key, value) in map {
            let name = if frontend == Frontend::Node { snake(&key) } else { key.clone() };
            if !FIELDS.contains(&name.as_str()) && !ALIASES.contains(&name.as_str()) {
                let nearest = FIELDS
                    .iter()
                    .map(|f| (strsim::damerau_levenshtein(f, &name), *f))
                    .min()
                    .filter(|(d, _)| *d <= 3)
                    .map(|(_, f)| format!("; did you mean {}?", frontend_key(frontend, f)))
                    .unwrap_or_default();
                return Err(Error::InvalidOption {
                    option: "options",
                    value: key,
                    reason: format!("it is not an option{nearest}"),
                });
            }
            if value.is_null() {
                continue;
            }
            normalised.insert(name, value);
        }
        let value = serde_json::Value::Object(normalised);
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = path.split(['.', '[']).next().unwrap_or("options").to_string();
            let key = frontend_key(frontend, &field);
            Error::InvalidOption { option: "options", value: key, reason: friendly(&e.into_inner().to_string()) }
        })
    }

    /// Parse every string and check every bound: the request [`crate::build_image`] takes.
    pub fn into_request(self, hooks: Hooks) -> Result<BuildRequest> {
        if self.program.is_empty() {
            return Err(Error::InvalidOption {
                option: "program",
                value: String::new(),
                reason: "name the program to package".into(),
            });
        }
        let mut programs: Vec<ProgramSpec> =
            self.program.iter().map(|p| p.to_string_lossy().parse::<ProgramSpec>()).collect::<Result<_>>()?;
        let base: Base = match &self.from_archive {
            Some(path) => Base::OciArchive { path: path.clone(), tag: None },
            None => self.base.parse()?,
        };
        let platform = match (&self.platform, &self.arch) {
            (Some(p), _) => Some(p.parse::<Platform>()?),
            (None, Some(arch)) => {
                Some(Platform::new(self.os.as_deref().unwrap_or("linux"), arch, self.variant.as_deref())?)
            }
            (None, None) => match &self.os {
                Some(os) => {
                    return Err(Error::InvalidPlatform {
                        input: os.clone(),
                        reason: "--os needs --arch (or use --platform os/arch)".into(),
                    })
                }
                None => None,
            },
        };
        if let Some(platform) = &platform {
            if programs.len() > 1 {
                return Err(Error::InvalidOption {
                    option: "platform",
                    value: platform.to_string(),
                    reason: "with several programs, give each its platform as PLATFORM=PATH".into(),
                });
            }
            programs[0].platform.get_or_insert_with(|| platform.clone());
        }
        let program = programs[0].path.clone();
        let platform = programs[0].platform.clone();
        let docker_platform = self.docker_platform.as_deref().map(str::parse::<Platform>).transpose()?;
        let sinks = Sink::for_build(&program, self.output.as_deref(), &self.push)?;
        let credentials: Option<Credentials> = self.creds.as_deref().map(str::parse).transpose()?;
        let timeout = match self.timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT => Some(Duration::from_secs_f64(t.max(0.001))),
            Some(t) => {
                return Err(Error::InvalidOption {
                    option: "timeout",
                    value: t.to_string(),
                    reason: format!("expected seconds, more than 0 and at most {MAX_TIMEOUT}"),
                })
            }
        };
        let jobs = match self.jobs {
            None => None,
            Some(n) if (1..=MAX_JOBS).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(Error::InvalidOption {
                    option: "jobs",
                    value: n.to_string(),
                    reason: format!("expected 1 to {MAX_JOBS} threads; omit it to use every core"),
                })
            }
        };
        let level = match self.compression_level {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| Error::InvalidOption {
                option: "compression-level",
                value: n.to_string(),
                reason: "expected gzip 0-9 or zstd 1-19".into(),
            })?),
        };
        let compression = Compression::from_options(self.compression.as_deref().unwrap_or("gzip"), level, jobs)?;
        let source_date_epoch = match self.source_date_epoch {
            None => None,
            Some(e) => {
                Some(u64::try_from(e).ok().filter(|e| *e <= MAX_EPOCH).ok_or_else(|| epoch_error(&e.to_string()))?)
            }
        };
        let mut add = self.add;
        for a in &mut add {
            if a.owner.is_none() {
                a.owner = self.add_owner.clone();
            }
            a.follow_symlinks |= self.add_follow_symlinks;
        }
        let tags = self.tag.iter().map(|t| t.parse()).collect::<Result<Vec<_>>>()?;
        let log = hooks.log;
        if let (Some(log), Some(creds)) = (&log, &credentials) {
            log.log(&format!("credentials: user {} from creds", creds.username().unwrap_or("?")));
        }
        let options = BuildOptions {
            path: self.path,
            args: self.args,
            env: self.env,
            workdir: self.workdir,
            user: self.user,
            labels: self.label.into_iter().collect::<BTreeMap<_, _>>(),
            annotations: self.annotation.into_iter().collect::<BTreeMap<_, _>>(),
            tags,
            add,
            allow_dynamic: self.allow_dynamic,
            bundle_libs: self.bundle_libs,
            sysroot: self.sysroot,
            bundle_lib: self.bundle_lib,
            profile: self.profile.as_deref().map(str::parse::<crate::lambda::Profile>).transpose()?,
            platform_tags: self.platform_tags,
            docker_platform,
            source_date_epoch,
            format: self.format.as_deref().map(str::parse::<Format>).transpose()?,
            compression,
            progress: hooks.progress,
            cancel: hooks.cancel,
            registry: RegistryOptions {
                insecure: self.insecure,
                ca_certs: self.ca_cert,
                credentials,
                timeout: Some(timeout.unwrap_or(Duration::from_secs(60))),
                log,
                ..RegistryOptions::default()
            },
        };
        Ok(BuildRequest { base, program, platform, programs, sinks, options })
    }
}

impl BuildRequest {
    /// Build it: [`crate::build_images`] of every program.
    pub fn run(&self) -> Result<crate::BuildResult> {
        crate::build_images(&self.base, &self.programs, &self.sinks, &self.options)
    }
}

fn frontend_key(frontend: Frontend, field: &str) -> String {
    match frontend {
        Frontend::Node => camel(field),
        _ => field.to_string(),
    }
}

/// serde's wording without Rust type names.
fn friendly(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    message
        .replace("u32", "a whole number")
        .replace("u64", "a whole number")
        .replace("i64", "a whole number")
        .replace("f64", "a number")
        .replace("a sequence", "a list")
        .replace("a map", "an object")
}

fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    text.chars().take(60).collect()
}

fn epoch_error(value: &str) -> Error {
    Error::InvalidOption {
        option: "SOURCE_DATE_EPOCH",
        value: value.to_string(),
        reason: format!("expected whole seconds since 1970-01-01, at most {MAX_EPOCH} (the year 9999)"),
    }
}

/// Check a creation time is one RFC 3339 and Go can write (a year up to 9999).
pub(crate) fn check_epoch(epoch: u64) -> Result<()> {
    if epoch > MAX_EPOCH {
        return Err(epoch_error(&epoch.to_string()));
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH` from `given`, else the environment, else 0; checked.
pub fn source_date_epoch(given: Option<u64>) -> Result<u64> {
    if let Some(epoch) = given {
        check_epoch(epoch)?;
        return Ok(epoch);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => {
            let epoch: u64 = value.trim().parse().map_err(|_| epoch_error(&value))?;
            check_epoch(epoch)?;
            Ok(epoch)
        }
        _ => Ok(0),
    }
}

/// Parse `KEY=VALUE` (for `--env`, `--label`, `--annotation`).
pub fn parse_key_value(option: &'static str, input: &str) -> Result<(String, String)> {
    match input.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::InvalidOption { option, value: input.to_string(), reason: "expected KEY=VALUE".into() }),
    }
}

#[cfg(feature = "cli")]
fn parse_env(s: &str) -> std::result::Result<(String, String), String> {
    parse_key_value("env", s).map_err(|e| e.to_string())
}
#[cfg(feature = "cli")]
fn parse_label(s: &str) -> std::result::Result<(String, String), String> {
    parse_key_value("label", s).map_err(|e| e.to_string())
}
#[cfg(feature = "cli")]
fn parse_annotation(s: &str) -> std::result::Result<(String, String), String> {
    parse_key_value("annotation", s).map_err(|e| e.to_string())
}
#[cfg(feature = "cli")]
fn parse_add(s: &str) -> std::result::Result<Add, String> {
    s.parse::<Add>().map_err(|e| e.to_string())
}

/// One value or a list of them.
fn one_or_many<'de, D, T>(deserializer: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    match OneOrMany::<T>::deserialize(deserializer)
        .map_err(|_| de::Error::custom("expected a string or a list of strings"))?
    {
        OneOrMany::One(one) => Ok(vec![one]),
        OneOrMany::Many(many) => Ok(many),
    }
}

/// Programs: a path, a list of paths (`PLATFORM=PATH` allowed), or an object of platform →
/// path.
fn programs<'de, D>(deserializer: D) -> std::result::Result<Vec<PathBuf>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        One(PathBuf),
        Many(Vec<PathBuf>),
        ByPlatform(indexmap_like::OrderedMap),
    }
    match Shape::deserialize(deserializer)
        .map_err(|_| de::Error::custom("expected a path, a list of paths, or an object of platform to path"))?
    {
        Shape::One(one) => Ok(vec![one]),
        Shape::Many(many) => Ok(many),
        Shape::ByPlatform(map) => {
            Ok(map.0.into_iter().map(|(platform, path)| PathBuf::from(format!("{platform}={path}"))).collect())
        }
    }
}

/// `{"KEY": "VALUE", …}` (in order) or `["KEY=VALUE", …]`.
fn key_values<'de, D>(deserializer: D) -> std::result::Result<Vec<(String, String)>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Map(indexmap_like::OrderedMap),
        List(Vec<String>),
    }
    let shape = Shape::deserialize(deserializer).map_err(|_| {
        de::Error::custom("expected an object of strings ({\"KEY\": \"VALUE\"}) or a list of \"KEY=VALUE\" strings")
    })?;
    match shape {
        Shape::Map(map) => Ok(map.0),
        Shape::List(items) => items
            .iter()
            .map(|kv| parse_key_value("env", kv).map_err(|_| de::Error::custom(format!("{kv:?} is not KEY=VALUE"))))
            .collect(),
    }
}

/// `"SRC:DEST"` strings or `{src, dest, owner?, follow_symlinks?}` objects, one or a list.
fn adds<'de, D>(deserializer: D) -> std::result::Result<Vec<Add>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum One {
        Text(String),
        Full(Add),
    }
    // A list first: an `Add` would also read from a two-string list, as a tuple struct.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Items {
        Many(Vec<One>),
        Single(One),
    }
    let items = match Items::deserialize(deserializer)
        .map_err(|_| de::Error::custom("expected \"SRC:DEST\" strings or {src, dest} objects"))?
    {
        Items::Many(items) => items,
        Items::Single(item) => vec![item],
    };
    items
        .into_iter()
        .map(|item| match item {
            One::Text(text) => text.parse::<Add>().map_err(|e| de::Error::custom(e.to_string())),
            One::Full(add) => Ok(add),
        })
        .collect()
}

/// A JSON object read as ordered (key, string value) pairs.
mod indexmap_like {
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::Deserialize;
    use std::fmt;

    pub(super) struct OrderedMap(pub Vec<(String, String)>);

    impl<'de> Deserialize<'de> for OrderedMap {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = OrderedMap;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object of strings")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = map.next_entry::<String, String>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            deserializer.deserialize_map(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_options_are_checked() {
        let err = BuildSpec::from_json(json!({"entrypoint": "x", "bse": "scratch"}), Frontend::Node).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("did you mean base?"), "{err}");
        let err = BuildSpec::from_json(json!({"entrypoint": "x", "allowDynamik": true}), Frontend::Node).unwrap_err();
        assert!(err.to_string().contains("allowDynamic"), "{err}");
        let spec =
            BuildSpec::from_json(json!({"entrypoint": "x", "env": ["A=1"], "allowDynamic": true}), Frontend::Node)
                .unwrap();
        assert_eq!(spec.env, vec![("A".to_string(), "1".to_string())]);
        assert!(spec.allow_dynamic);
        let err = BuildSpec::from_json(json!({"entrypoint": "x", "env": [1]}), Frontend::Node).unwrap_err();
        assert!(err.to_string().contains("env"), "{err}");
        let err = BuildSpec::from_json(json!({"entrypoint": "x", "jobs": "many"}), Frontend::Node).unwrap_err();
        assert!(!err.to_string().contains("i64"), "{err}");
        let spec =
            BuildSpec::from_json(json!({"entrypoint": "x", "env": {"B": "2", "A": "1"}}), Frontend::Python).unwrap();
        assert_eq!(spec.env[0].0, "B", "mapping order kept");
        let spec = BuildSpec::from_json(json!({"entrypoint": "x", "add": ["a:/x", "b:/y"]}), Frontend::Node).unwrap();
        assert_eq!(spec.add.len(), 2, "a list of two strings is two items, not one {{src, dest}}");
        let spec = BuildSpec::from_json(json!({"entrypoint": "x", "add": {"src": "a", "dest": "/x"}}), Frontend::Node)
            .unwrap();
        assert_eq!(spec.add[0].dest, "/x");
    }

    #[test]
    fn bounds_are_checked() {
        let spec = |v: serde_json::Value| {
            let mut base = json!({"entrypoint": "./hello"});
            base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
            BuildSpec::from_json(base, Frontend::Python).unwrap().into_request(Hooks::default())
        };
        for bad in [
            json!({"jobs": 4294967295u64}),
            json!({"jobs": -1}),
            json!({"jobs": 0}),
            json!({"compression_level": -3}),
            json!({"timeout": 0}),
            json!({"timeout": 1e300}),
            json!({"source_date_epoch": 253402300800u64}),
            json!({"source_date_epoch": -1}),
        ] {
            let err = spec(bad.clone()).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad}: {err}");
        }
        assert!(spec(json!({"jobs": 256, "source_date_epoch": 253402300799u64})).is_ok());
    }

    #[test]
    fn spells_hints_per_frontend() {
        let hint = "pass --allow-dynamic to build anyway, or --from a glibc image";
        assert_eq!(Frontend::Python.spell(hint), "pass allow_dynamic=True to build anyway, or base= a glibc image");
        assert_eq!(Frontend::Node.spell(hint), "pass allowDynamic: true to build anyway, or base: a glibc image");
        assert_eq!(Frontend::Cli.spell(hint), hint);
        assert_eq!(Frontend::Node.spell("--not-an-option"), "--not-an-option");
    }
}
