//! `build_image`: base + program (+ files) → image → sinks, the one-call short path.

use crate::add::Add;
use crate::base::Base;
use crate::cancel::CancelToken;
use crate::config::ConfigEdits;
use crate::entry::LayerOptions;
use crate::error::{Error, Result};
use crate::image::{Format, Image, ImageBuilder};
use crate::layer::{Compression, Layer};
use crate::platform::Platform;
use crate::program::{path_in_image, Program};
use crate::progress::ProgressFn;
use crate::reference::Reference;
use crate::registry::RegistryOptions;
use crate::sink::{temp_dir_for, Sink, WriteOptions};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

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
    /// Files beside the program (`--add SRC:DEST`), in one layer below the program's.
    pub add: Vec<Add>,
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
            .field("add", &self.add)
            .field("allow_dynamic", &self.allow_dynamic)
            .field("source_date_epoch", &self.source_date_epoch)
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("cancel", &self.cancel)
            .field("registry", &self.registry)
            .finish()
    }
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// The manifest digest (`sha256:…`): the image's identity.
    pub digest: String,
    /// The config digest: Docker's image ID.
    pub config_digest: String,
    /// Bytes of the image as stored: manifest, config and every layer.
    pub size: u64,
    /// The image's platform.
    pub platform: Platform,
    /// Every output written, as transport strings (`oci-archive:hello.tar`).
    pub outputs: Vec<String>,
    /// The names given to the image.
    pub tags: Vec<String>,
    /// Every registry push, as `registry/repository@sha256:…`.
    pub pushed: Vec<String>,
}

impl BuildResult {
    /// The result of writing `image` to `sinks` under `tags`.
    pub fn new(image: &Image, platform: Platform, sinks: &[Sink], tags: &[Reference]) -> BuildResult {
        BuildResult {
            digest: image.manifest_digest.clone(),
            config_digest: image.config_digest.clone(),
            size: image.size(),
            platform,
            outputs: sinks.iter().map(Sink::to_string).collect(),
            tags: tags.iter().map(Reference::to_string).collect(),
            pushed: sinks
                .iter()
                .filter_map(|sink| match sink {
                    Sink::Registry { reference } => Some(format!("{}@{}", reference.name(), image.manifest_digest)),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// Build an image of `entrypoint` on `base` for `platform` (default: the program's own
/// architecture) and write it to every sink in `sinks`.
///
/// A short composition of the public model: [`Program::open`] checks the program,
/// [`ImageBuilder::from_base`] resolves the base, the `--add` files and the program become
/// layers ([`Layer::from_entries`]), the config is edited, and [`Image::write`] writes every
/// output. Nothing is written unless the whole image could be built: every input is checked
/// first, and each output appears atomically.
///
/// [`Image::write`]: crate::Image::write
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
    let epoch = crate::options::source_date_epoch(options.source_date_epoch)?;
    let path_in_image = path_in_image(entrypoint, options.path.as_deref())?;
    let edits = ConfigEdits {
        entrypoint: Some(vec![path_in_image.clone()]),
        cmd: Some(options.args.clone()),
        env: options.env.clone(),
        user: options.user.clone(),
        workdir: options.workdir.clone(),
        labels: options.labels.clone(),
    };
    edits.check()?;
    if options.annotations.keys().any(String::is_empty) {
        return Err(Error::InvalidOption {
            option: "annotation",
            value: String::new(),
            reason: "the key is empty".into(),
        });
    }
    options.compression.validate()?;
    let program = Program::open(entrypoint, platform)?;
    let added = crate::add::entries_of(&options.add, &path_in_image)?;
    let temp_dir = temp_dir_for(sinks);

    let mut image = ImageBuilder::from_base(base, program.platform(), &options.registry)?;
    if let Some(interpreter) = program.interpreter() {
        if !options.allow_dynamic && !image.has_file(interpreter, &temp_dir)? {
            return Err(Error::DynamicProgram {
                path: entrypoint.to_path_buf(),
                interpreter: interpreter.to_string(),
                base: base.to_string(),
            });
        }
    }
    for sink in sinks {
        sink.preflight()?;
    }
    if let Some(format) = options.format {
        image.set_format(format);
    }
    let layer_options = LayerOptions {
        format: image.format(),
        compression: options.compression.clone(),
        mtime: epoch,
        temp_dir: Some(temp_dir),
        cancel: options.cancel.clone(),
        progress: options.progress.clone(),
    };
    let version = crate::VERSION;
    if !added.is_empty() {
        let layer = Layer::from_entries(added, &layer_options)?;
        let what: Vec<String> = options.add.iter().map(ToString::to_string).collect();
        image.append(layer, format!("zeroimage {version}: ADD {}", what.join(" ")));
    }
    let layer = Layer::from_entries(vec![program.entry(&path_in_image)], &layer_options)?;
    image.append(layer, format!("zeroimage {version}: COPY {} {path_in_image}", program.file_name()));
    image.configure(&edits)?;
    for (key, value) in &options.annotations {
        image.set_annotation(key, value)?;
    }
    image.set_created(epoch)?;
    let built = image.build()?;

    let tags = if options.tags.is_empty() { default_names(entrypoint) } else { options.tags.clone() };
    let write = WriteOptions {
        tags: tags.clone(),
        mtime: epoch,
        cancel: options.cancel.clone(),
        progress: options.progress.clone(),
        registry: options.registry.clone(),
    };
    built.write(sinks, &write)?;
    Ok(BuildResult::new(&built, program.platform().clone(), sinks, &tags))
}

/// `<program name>:latest`, lowercased, when that is a valid image name.
fn default_names(entrypoint: &Path) -> Vec<Reference> {
    let name = entrypoint.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    name.parse::<Reference>().ok().filter(|r| r.tag() == Some("latest") && r.digest().is_none()).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_from_program() {
        assert_eq!(default_names(Path::new("./hello"))[0].to_string(), "docker.io/library/hello:latest");
        assert_eq!(default_names(Path::new("./Hello"))[0].familiar(), "hello:latest");
        assert!(default_names(Path::new("./he llo")).is_empty());
        assert!(default_names(Path::new("./x:y")).is_empty());
    }
}
