//! # zeroimage
//!
//! A daemonless container image builder for single-binary programs: the equivalent of
//!
//! ```dockerfile
//! FROM scratch
//! COPY program /program
//! ENTRYPOINT ["/program"]
//! ```
//!
//! without Docker or any container runtime. One call does it:
//! [`build_image(base, entrypoint, platform, sinks, options)`](build_image).
//!
//! ```no_run
//! use zeroimage::{build_image, Base, BuildOptions, Sink};
//!
//! let base: Base = "scratch".parse()?;
//! let sink: Sink = "oci-archive:hello.tar".parse()?;
//! let result = build_image(&base, "./hello".as_ref(), None, &[sink], &BuildOptions::default())?;
//! println!("{} ({})", result.digest, result.platform);
//! # Ok::<(), zeroimage::Error>(())
//! ```
//!
//! The archive is an OCI image layout that `docker load` (any version), podman, skopeo and
//! umoci read as is. Builds are reproducible: the same program and options give the same
//! bytes on any machine (timestamps come from `SOURCE_DATE_EPOCH`, else the Unix epoch).

pub mod base;
mod build;
mod cancel;
pub mod cli;
pub mod compress;
mod config;
mod digest;
pub mod elf;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod layer;
pub mod platform;
mod redact;
pub mod reference;
pub mod registry;
pub mod sink;

pub use base::{write_base, Base, BaseOptions, Builtin, BuiltinItem};
pub use build::{build_image, parse_key_value, BuildOptions, BuildResult, Progress, ProgressFn, Stage};
pub use cancel::CancelToken;
pub use digest::{is_sha256_digest, sha256_digest};
pub use error::{Error, ErrorKind, Result};
pub use image::{Format, Image};
pub use layer::{Algorithm as CompressionAlgorithm, Compression};
pub use platform::Platform;
pub use reference::Reference;
pub use registry::{Credentials, RegistryOptions};
pub use sink::Sink;

/// The version of zeroimage (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
