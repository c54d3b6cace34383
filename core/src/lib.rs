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
//! `build_image` is a short composition of public steps, which you can compose yourself:
//! resolve a base ([`ImageBuilder::from_base`]), append layers ([`Layer::from_entries`] of
//! [`Entry`] files, directories and symlinks; [`Program`] for the checked program; [`Add`] for
//! host files), edit the config ([`ImageBuilder::configure`]), then [`build`](ImageBuilder::build)
//! and [`write`](Image::write) to any number of [`Sink`]s, each of which reports its digest.
//!
//! ```no_run
//! use zeroimage::{Base, ImageBuilder, Layer, LayerOptions, Program, RegistryOptions, Sink, WriteOptions};
//!
//! let program = Program::open("./server".as_ref(), None)?;
//! let base: Base = "builtin:static".parse()?;
//! let mut image = ImageBuilder::from_base(&base, program.platform(), &RegistryOptions::default())?;
//! let layer = Layer::from_entries(vec![program.entry("/server")], &LayerOptions::default())?;
//! image.append(layer, "COPY server /server").set_entrypoint(["/server"]);
//! let sink: Sink = "server.tar".parse()?;
//! let written = image.build()?.write(&[sink], &WriteOptions::default())?;
//! println!("{}", written[0].digest);
//! # Ok::<(), zeroimage::Error>(())
//! ```
//!
//! The archive is an OCI image layout that `docker load` (any version), podman, skopeo and
//! umoci read as is. Builds are reproducible: the same program and options give the same
//! bytes on any machine (timestamps come from `SOURCE_DATE_EPOCH`, else the Unix epoch).

#![warn(missing_docs)]

pub mod add;
pub mod base;
mod build;
pub mod bundle;
mod cancel;
#[cfg(feature = "cli")]
pub mod cli;
pub mod compress;
mod config;
mod convert;
mod digest;
pub mod elf;
mod entry;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod lambda;
pub mod layer;
pub mod media_type;
pub mod options;
pub mod platform;
mod program;
mod progress;
mod redact;
pub mod reference;
pub mod registry;
pub mod sink;

pub use add::Add;
pub use base::{write_base, Base, BaseOptions, Builtin, BuiltinItem};
pub use build::{build_image, build_images, BuildOptions, BuildResult, PlatformManifest, ProgramSpec};
pub use bundle::{Bundle, BundleEntry, BundleOptions, BundledLibrary};
pub use cancel::CancelToken;
pub use config::ConfigEdits;
pub use digest::{is_sha256_digest, sha256_digest};
pub use entry::{Content, Entry, EntryKind, LayerOptions};
pub use error::{Error, ErrorKind, Result};
pub use image::{Image, ImageBuilder, ImageIndex};
pub use lambda::Profile;
pub use layer::{Algorithm as CompressionAlgorithm, Compression, Layer};
pub use media_type::Format;
pub use options::{parse_key_value, BuildRequest, BuildSpec, Frontend, Hooks};
pub use platform::Platform;
pub use program::{path_in_image, Program};
pub use progress::{Progress, ProgressFn, Stage};
pub use reference::Reference;
pub use registry::{Credentials, RegistryOptions};
pub use sink::{Sink, WriteOptions, Written};

/// The root README's Rust snippets, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The version of zeroimage (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
