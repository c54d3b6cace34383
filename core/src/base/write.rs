//! Writing a base on its own, as an image (`zeroimage base builtin:static -o static.tar`), so
//! that other tools can use it: `docker load`, a Dockerfile's `FROM`, skopeo, umoci.

use super::Base;
use crate::build::{BuildResult, ProgressFn};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::image::Format;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::sink::{Sink, WriteContext};
use std::collections::BTreeMap;
use std::fmt;

/// Options of [`write_base`]. `Default` gives the CLI's defaults.
#[derive(Clone, Default)]
pub struct BaseOptions {
    /// Names for the image, written into archives (`RepoTags`, `index.json`). When empty, a
    /// built-in base is named `zeroimage-builtin-<name>:<zeroimage version>`.
    pub tags: Vec<Reference>,
    /// Media types of the output; default follows the base (OCI for the built-ins).
    pub format: Option<Format>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Called as the outputs are written.
    pub progress: Option<ProgressFn>,
    /// Set it to stop; nothing is written then.
    pub cancel: CancelToken,
}

impl fmt::Debug for BaseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseOptions")
            .field("tags", &self.tags)
            .field("format", &self.format)
            .field("annotations", &self.annotations)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// Write `base` itself, resolved for `platform`, to every sink in `sinks`.
///
/// `platform` defaults to `linux/<the architecture zeroimage runs on>` (the built-ins' files
/// are the same for every architecture; only the config says which one). The image is exactly
/// what a build `--from` the same base starts with, so a build's base layer and this image's
/// layer have the same digest. Nothing here depends on the time: archive entries and the
/// config use the base's own fixed timestamp (the Unix epoch), not
/// `SOURCE_DATE_EPOCH`.
pub fn write_base(
    base: &Base,
    platform: Option<&Platform>,
    sinks: &[Sink],
    options: &BaseOptions,
) -> Result<BuildResult> {
    if sinks.is_empty() {
        return Err(Error::InvalidOption { option: "output", value: String::new(), reason: "no output given".into() });
    }
    let platform = match platform {
        Some(p) => p.clone(),
        None => host_platform()?,
    };
    for sink in sinks {
        sink.preflight()?;
    }
    crate::convert::check_format(options.format, sinks)?;
    let registry = crate::registry::RegistryOptions::default();
    let resolved = base.resolve(&platform, &registry)?;
    let format = options.format.unwrap_or(resolved.format);
    let scratch = sinks[0].scratch_dir();
    let images = crate::convert::output_images(
        sinks,
        crate::convert::Parts {
            platform: &platform,
            config: &resolved.config,
            base_layers: resolved.layers,
            own: None,
            annotations: &options.annotations,
            push_format: format,
            compression: &crate::compress::Compression::default(),
            scratch: &scratch,
        },
    )?;

    let tags = if options.tags.is_empty() { default_names(base) } else { options.tags.clone() };
    let ctx = WriteContext {
        tags: &tags,
        mtime: super::builtin::BASE_MTIME,
        cancel: &options.cancel,
        progress: options.progress.as_ref(),
        registry: &registry,
    };
    crate::build::write_outputs(sinks, &images, &ctx)?;
    Ok(BuildResult::new(&images, platform, sinks, &tags))
}

/// `linux/<architecture of this process>`.
fn host_platform() -> Result<Platform> {
    Platform::new("linux", std::env::consts::ARCH, None)
}

/// `zeroimage-builtin-static:<version>` for a built-in; nothing for other bases.
fn default_names(base: &Base) -> Vec<Reference> {
    match base {
        Base::Builtin(builtin) => format!("zeroimage-builtin-{}:{}", builtin.name(), crate::VERSION)
            .parse::<Reference>()
            .ok()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Builtin;

    #[test]
    fn writes_the_builtin_as_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let base = Base::Builtin(Builtin::Static);
        let sink: Sink = format!("oci:{}", dir.path().join("layout").display()).parse().unwrap();
        let platform: Platform = "linux/arm64".parse().unwrap();
        let a = write_base(&base, Some(&platform), std::slice::from_ref(&sink), &BaseOptions::default()).unwrap();
        let b = write_base(&base, Some(&platform), &[sink], &BaseOptions::default()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.platform, platform);
        assert_eq!(a.tags, vec![format!("docker.io/library/zeroimage-builtin-static:{}", crate::VERSION)]);
        // Archives and layouts are always OCI: --format docker, which only changes pushes,
        // is refused without one.
        let docker = BaseOptions { format: Some(Format::Docker), ..BaseOptions::default() };
        let sink: Sink = format!("oci:{}", dir.path().join("docker").display()).parse().unwrap();
        let error = write_base(&base, None, &[sink], &docker).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("always hold OCI manifests"), "{error}");
        assert!(write_base(&base, None, &[], &BaseOptions::default()).is_err());
    }
}
