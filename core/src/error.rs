//! Errors: one enum named after what failed, a coarse stable [`ErrorKind`], and [`Error::report`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The result type of every fallible zeroimage call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stable, coarse classification of an [`Error`], shared by the CLI, Python and Node.
///
/// The string forms (`invalid_input`, `not_found`, …) are part of the public interface: Node
/// errors carry them as `code`, Python maps each one to an exception subclass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller gave something malformed: a reference, platform, option or program.
    InvalidInput,
    /// Something named by the caller does not exist: the program, a base image, a tag.
    NotFound,
    /// A registry refused the credentials, or none were available.
    Auth,
    /// A registry answered with an error the caller cannot fix by changing input.
    Registry,
    /// The network failed: connection refused, reset, timeout, TLS.
    Network,
    /// Reading or writing a local file failed.
    Io,
    /// Content did not match its digest, or an archive is corrupt or hostile.
    Integrity,
    /// The input is well-formed but asks for something zeroimage does not do.
    Unsupported,
    /// The build was cancelled (Ctrl-C, an abort signal).
    Cancelled,
}

impl ErrorKind {
    /// The stable snake_case name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Auth => "auth",
            ErrorKind::Registry => "registry",
            ErrorKind::Network => "network",
            ErrorKind::Io => "io",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// Every kind, in declaration order (for bindings that build one exception class each).
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::Auth,
        ErrorKind::Registry,
        ErrorKind::Network,
        ErrorKind::Io,
        ErrorKind::Integrity,
        ErrorKind::Unsupported,
        ErrorKind::Cancelled,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in zeroimage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is documented; its fields are named for what they hold
pub enum Error {
    /// An image reference (`registry/repo:tag`) could not be parsed.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    /// A platform (`os/arch[/variant]`) could not be parsed.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },

    /// A base or output string (`oci-archive:PATH`, `oci:DIR`, …) could not be parsed.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidTransport { what: &'static str, input: String, reason: String },

    /// A build option has a bad value.
    #[error("invalid {option} {value:?}: {reason}")]
    InvalidOption { option: &'static str, value: String, reason: String },

    /// The program to package does not exist.
    #[error("program {} not found", .path.display())]
    ProgramNotFound { path: PathBuf },

    /// The program path names something that is not a regular file.
    #[error("program {} is not a regular file (it is {what})", .path.display())]
    ProgramNotFile { path: PathBuf, what: &'static str },

    /// The program is not something a container runtime can execute on this base.
    #[error("program {} cannot run in the image: {reason}", .path.display())]
    ProgramNotRunnable { path: PathBuf, reason: String, hint: String },

    /// The program was built for another architecture than the image platform.
    #[error("program {} is built for {program_arch} but the image platform is {platform}", .path.display())]
    ArchitectureMismatch { path: PathBuf, program_arch: String, platform: String },

    /// A dynamically linked program on a base without its libraries.
    #[error("program {} is dynamically linked (interpreter {interpreter}) and {base} has no such file", .path.display())]
    DynamicProgram { path: PathBuf, interpreter: String, base: String },

    /// A shared library (or the loader) that a program needs is not in the sysroot.
    #[error("library {name} needed by {needed_by} not found in {}; searched {}{}", .sysroot.display(), .searched.join(", "), if .skipped.is_empty() { String::new() } else { format!("; skipped {}", .skipped.join(", ")) })]
    LibraryNotFound { name: String, needed_by: String, sysroot: PathBuf, searched: Vec<String>, skipped: Vec<String> },

    /// Bundling the libraries of a program built for another machine needs a sysroot.
    #[error("program {} is built for {program_arch}, not for this machine ({host_arch}): its libraries cannot come from /", .path.display())]
    SysrootRequired { path: PathBuf, program_arch: String, host_arch: String },

    /// The sysroot given does not exist or is not a directory.
    #[error("sysroot {} does not exist or is not a directory", .path.display())]
    SysrootNotFound { path: PathBuf },

    /// Libraries were to be bundled onto a base that has its own C library.
    #[error("{base} already has a C library (its loader {interpreter} is in the image); bundled libraries would mix with it")]
    BaseHasLibc { base: String, interpreter: String },

    /// The library layer would replace a base's symlink or file with a directory.
    #[error("{base} has {path} as {what}; the bundled libraries' layer would replace it with a directory")]
    BaseDirectoryConflict { base: String, path: String, what: String },

    /// The program changed size while it was being read.
    #[error("program {} changed while it was being read (expected {expected} bytes, read {actual})", .path.display())]
    ProgramChanged { path: PathBuf, expected: u64, actual: u64 },

    /// A local file operation failed.
    #[error("cannot {op} {}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },

    /// Content did not match its digest.
    #[error("{what} does not match its digest (expected {expected}, got {actual})")]
    DigestMismatch { what: String, expected: String, actual: String },

    /// The input is well-formed but names something this version does not do.
    #[error("{what} is not supported")]
    Unsupported { what: String, hint: Option<String> },

    /// The Docker Engine could not be reached.
    #[error("cannot reach the Docker engine at {host}")]
    DaemonUnavailable { host: String, source: io::Error },

    /// The Docker Engine refused the image.
    #[error("the Docker engine at {host} refused the image: {message}")]
    DaemonRejected { host: String, message: String },

    /// A configured Docker credential helper is missing or failed.
    #[error("credential helper {helper} cannot be used: {reason}")]
    CredentialHelper { helper: String, reason: String },

    /// The build was cancelled before it finished; nothing was written.
    #[error("build cancelled; nothing was written")]
    Cancelled,

    /// A base image, tag, manifest or blob does not exist where it was looked for.
    #[error("{base}: {what} not found")]
    BaseNotFound { base: String, what: String, hint: Option<String> },

    /// A base image offers no manifest for the platform asked for.
    #[error("{base} has no image for {platform} (it offers {})", if .available.is_empty() { "none".to_string() } else { .available.join(", ") })]
    PlatformNotFound { base: String, platform: String, available: Vec<String> },

    /// A base is readable but is not what it should be: a corrupt, hostile or malformed archive,
    /// layout or manifest.
    #[error("{base} is not a valid image: {reason}")]
    InvalidBase { base: String, reason: String },

    /// A registry refused access (401/403), with the registry's own message.
    #[error("{registry} refused access{}: {message}", .scope.as_deref().map(|s| format!(" to {s}")).unwrap_or_default())]
    RegistryAuth { registry: String, scope: Option<String>, message: String, hint: Option<String> },

    /// A registry answered with an unexpected status.
    #[error("{registry} answered {status} to {method} {url}: {message}")]
    Registry { registry: String, method: &'static str, url: String, status: u16, message: String },

    /// Reading a base failed for a reason that does not name the base itself.
    #[error("cannot read base {base}")]
    BaseUnavailable { base: String, source: Box<Error> },

    /// The TLS connection to a registry failed: its certificate was not trusted or not valid,
    /// or it refused ours. `reason` says what was wrong in words, `hint` which file to pass.
    #[error("cannot reach {url}: {reason}")]
    Certificate { url: String, reason: String, hint: String },

    /// The image breaks rules of the profile asked for (`--profile lambda`); every violation is
    /// listed. Nothing was written.
    #[error("the image does not meet the {profile} profile:{}", .violations.iter().map(|v| format!("\n  - {v}")).collect::<String>())]
    ProfileViolations { profile: String, violations: Vec<String> },

    /// A registry could not be reached, or the connection failed.
    #[error("cannot reach {url}")]
    Network { url: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::InvalidPlatform { .. }
            | Error::InvalidTransport { .. }
            | Error::InvalidOption { .. }
            | Error::ProgramNotFile { .. }
            | Error::ProgramNotRunnable { .. }
            | Error::ArchitectureMismatch { .. }
            | Error::DynamicProgram { .. }
            | Error::SysrootRequired { .. }
            | Error::BaseHasLibc { .. }
            | Error::BaseDirectoryConflict { .. }
            | Error::ProfileViolations { .. } => ErrorKind::InvalidInput,
            Error::LibraryNotFound { .. } | Error::SysrootNotFound { .. } => ErrorKind::NotFound,
            Error::ProgramNotFound { .. } => ErrorKind::NotFound,
            Error::ProgramChanged { .. } | Error::Io { .. } => ErrorKind::Io,
            Error::DigestMismatch { .. } => ErrorKind::Integrity,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::DaemonUnavailable { .. } => ErrorKind::Network,
            Error::DaemonRejected { .. } => ErrorKind::Registry,
            Error::CredentialHelper { .. } => ErrorKind::Auth,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::BaseNotFound { .. } => ErrorKind::NotFound,
            Error::BaseUnavailable { source, .. } => source.kind(),
            Error::PlatformNotFound { .. } => ErrorKind::NotFound,
            Error::InvalidBase { .. } => ErrorKind::Integrity,
            Error::RegistryAuth { .. } => ErrorKind::Auth,
            Error::Registry { .. } => ErrorKind::Registry,
            Error::Network { .. } | Error::Certificate { .. } => ErrorKind::Network,
        }
    }

    /// What the user can do about it, when there is something specific to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::ProgramNotRunnable { hint, .. } => Some(hint.clone()),
            Error::Unsupported { hint, .. } => hint.clone(),
            Error::BaseNotFound { hint, .. } | Error::RegistryAuth { hint, .. } => hint.clone(),
            Error::Certificate { hint, .. } => Some(hint.clone()),
            Error::ProfileViolations { profile, .. } => Some(format!(
                "nothing was written or pushed; fix every item above (the README's {profile} profile section says why each rule is there)"
            )),
            Error::BaseUnavailable { source, .. } => source.hint(),
            Error::PlatformNotFound { .. } => Some(
                "pass --platform with one of the platforms the base offers, and a program built for it".to_string(),
            ),
            Error::CredentialHelper { helper, .. } => {
                Some(format!("install {helper}, or remove it from credsStore/credHelpers in your Docker config.json"))
            }
            Error::Network { source, .. } if source.to_string().contains("certificate") => Some(
                "trust the registry's CA with --ca-cert FILE (or SSL_CERT_FILE), or use --insecure for a test registry"
                    .into(),
            ),
            Error::DaemonUnavailable { .. } => {
                Some("start Docker, or point DOCKER_HOST at its socket (unix:///path) or port (tcp://host:port)".into())
            }
            Error::DynamicProgram { .. } => Some(
                "a scratch image has no C library or dynamic loader; link the program statically \
                 (Go: CGO_ENABLED=0; Rust: --target x86_64-unknown-linux-musl or \
                 RUSTFLAGS='-C target-feature=+crt-static'; C: gcc -static), or build on a base \
                 that has a libc (--from with a glibc/musl image), or pass --bundle-libs to add \
                 the program's shared libraries to the image (from this machine, or from \
                 --sysroot DIR), or pass --allow-dynamic to build anyway"
                    .to_string(),
            ),
            Error::LibraryNotFound { .. } => Some(
                "install the library into the sysroot (or pass --sysroot DIR with one that has it); \
                 a library the program only dlopens can be named with --bundle-lib SONAME"
                    .to_string(),
            ),
            Error::SysrootRequired { program_arch, .. } => Some(format!(
                "pass --sysroot DIR, a directory holding the {program_arch} libraries as they are \
                 installed on the target (e.g. --sysroot /usr/aarch64-linux-gnu from Debian's \
                 libc6-arm64-cross, or an unpacked root file system)"
            )),
            Error::SysrootNotFound { .. } => Some(
                "pass --sysroot a directory that stands for the target's / (holding its lib and usr/lib)".to_string(),
            ),
            Error::BaseDirectoryConflict { .. } => {
                Some("build on scratch or builtin:static to bundle libraries, or on a base that has them".to_string())
            }
            Error::BaseHasLibc { .. } => Some(
                "drop --bundle-libs to use the base's libraries, or build on scratch or builtin:static \
                 to bundle them"
                    .to_string(),
            ),
            Error::ArchitectureMismatch { program_arch, .. } => Some(format!(
                "pass --platform linux/{program_arch} (or omit --platform to use the program's \
                 architecture), or cross-compile the program for the platform you want"
            )),
            Error::InvalidPlatform { .. } => {
                Some("write the platform as os/arch[/variant], e.g. linux/amd64 or linux/arm64".to_string())
            }
            _ => None,
        }
    }

    /// The whole message: this error, its causes, and the hint, one per line.
    ///
    /// This is exactly what the CLI prints after `error: ` and what Python and Node errors carry.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        if let Some(hint) = self.hint() {
            out.push_str("\n  hint: ");
            out.push_str(&hint);
        }
        out
    }

    /// An I/O error on `path` during `op` (a verb phrase: "read", "create", "rename … to").
    pub(crate) fn io(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Error {
        Error::Io { op, path: path.as_ref().to_path_buf(), source }
    }
}
