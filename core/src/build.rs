//! `build_image`: base + program (+ files) → image → sinks, the one-call short path.

use crate::add::Add;
use crate::base::Base;
use crate::bundle::{self, Bundle, BundleOptions};
use crate::cancel::CancelToken;
use crate::config::ConfigEdits;
use crate::entry::LayerOptions;
use crate::error::{Error, Result};
use crate::image::{Format, Image, ImageBuilder, ImageIndex};
use crate::layer::{Compression, Layer};
use crate::platform::Platform;
use crate::program::{path_in_image, Program};
use crate::progress::ProgressFn;
use crate::reference::Reference;
use crate::registry::RegistryOptions;
use crate::sink::{temp_dir_for, Input, Sink, WriteOptions, Written};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

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
    /// Add the program's loader and shared libraries as a layer below the program's
    /// (`--bundle-libs`); see [`crate::bundle`]. Implied by `sysroot` and `bundle_lib`.
    pub bundle_libs: bool,
    /// Where bundled libraries come from (`--sysroot`); default `/`, only for a program of
    /// this machine's architecture. With several programs, it serves those of other
    /// architectures, and this machine's own programs take `/`.
    pub sysroot: Option<PathBuf>,
    /// Libraries to bundle that the program only `dlopen`s, by soname (`--bundle-lib`).
    pub bundle_lib: Vec<String>,
    /// Rules to check the image against before anything is written (`--profile lambda`):
    /// every violation is reported at once, as [`Error::ProfileViolations`].
    pub profile: Option<crate::lambda::Profile>,
    /// With several programs pushed: also tag each platform's image as `TAG-<arch>`.
    pub platform_tags: bool,
    /// With several programs written to an archive: the platform whose image
    /// `manifest.json` names for Docker 20.10 (default linux/amd64, else the first).
    pub docker_platform: Option<Platform>,
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
            .field("bundle_libs", &self.bundle_libs)
            .field("sysroot", &self.sysroot)
            .field("bundle_lib", &self.bundle_lib)
            .field("profile", &self.profile)
            .field("platform_tags", &self.platform_tags)
            .field("docker_platform", &self.docker_platform)
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
    /// The image's identity: its manifest digest (`sha256:…`), or the index digest when
    /// several programs made an image index.
    pub digest: String,
    /// The config digest (Docker's image ID) of the image, or of the first image of an index.
    pub config_digest: String,
    /// Bytes as stored: manifests, configs and every layer.
    pub size: u64,
    /// The image's platform (the first image's, for an index).
    pub platform: Platform,
    /// The index digest, when several programs made an image index.
    pub index_digest: Option<String>,
    /// Each platform's image: its platform and manifest digest.
    pub manifests: Vec<PlatformManifest>,
    /// The libraries bundled with `bundle_libs` into the (first) image (also recorded in the
    /// image at [`crate::bundle::RECORD_PATH`]); `None` without it.
    pub bundled: Option<Bundle>,
    /// Every output written, as transport strings (`oci-archive:hello.tar`).
    pub outputs: Vec<String>,
    /// What each output holds: its transport string and the digest it received.
    pub written: Vec<Written>,
    /// The names given to the image.
    pub tags: Vec<String>,
    /// Every registry push, as `registry/repository@sha256:…`.
    pub pushed: Vec<String>,
}

/// One platform's image in a [`BuildResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformManifest {
    /// Its platform.
    pub platform: Platform,
    /// Its manifest digest.
    pub digest: String,
    /// The libraries bundled into it (`bundle_libs`).
    pub bundled: Option<Bundle>,
}

impl BuildResult {
    /// The result of writing `images` (one, or the images of `index`) to `sinks` under `tags`.
    /// (Public for front ends that write an [`Image`] themselves: the Python and Node `Image`.)
    pub fn new(
        images: &[Image],
        index: Option<&ImageIndex>,
        written: Vec<Written>,
        sinks: &[Sink],
        tags: &[Reference],
        mut bundled: Vec<Option<Bundle>>,
    ) -> BuildResult {
        bundled.resize(images.len(), None);
        let first = &images[0];
        // Outputs can hold different digests (archives are OCI, pushes keep the base's format):
        // `digest` is the first output's, each push reports its own.
        let built = index.map_or(&first.manifest_digest, |i| &i.manifest_digest).clone();
        let digest = written.first().map_or(built, |w| w.digest.clone());
        let pushed = sinks
            .iter()
            .zip(&written)
            .filter_map(|(sink, w)| match sink {
                Sink::Registry { reference } => Some(format!("{}@{}", reference.name(), w.digest)),
                _ => None,
            })
            .collect();
        BuildResult {
            config_digest: first.config_digest.clone(),
            size: index.map_or_else(|| first.size(), ImageIndex::size),
            platform: first.platform.clone(),
            index_digest: index.map(|_| digest.clone()),
            bundled: bundled[0].clone(),
            manifests: images
                .iter()
                .zip(bundled)
                .map(|(i, bundled)| PlatformManifest {
                    platform: i.platform.clone(),
                    digest: i.manifest_digest.clone(),
                    bundled,
                })
                .collect(),
            outputs: sinks.iter().map(Sink::to_string).collect(),
            written,
            tags: tags.iter().map(Reference::to_string).collect(),
            pushed,
            digest,
        }
    }
}

/// A program to build an image of, and the platform it is for (`PLATFORM=PATH`, e.g.
/// `linux/arm/v6=dist/server-v6`); without one, its ELF header decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The program on the host.
    pub path: PathBuf,
    /// Its platform, when given.
    pub platform: Option<Platform>,
}

impl std::str::FromStr for ProgramSpec {
    type Err = Error;

    /// `PATH`, or `PLATFORM=PATH` when the part before the first `=` is an `os/arch[/variant]`.
    fn from_str(s: &str) -> Result<ProgramSpec> {
        if let Some((platform, path)) = s.split_once('=') {
            if platform.contains('/') && !platform.starts_with('.') && !path.is_empty() {
                return Ok(ProgramSpec { path: PathBuf::from(path), platform: Some(platform.parse()?) });
            }
        }
        Ok(ProgramSpec { path: PathBuf::from(s), platform: None })
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
pub fn build_image(
    base: &Base,
    entrypoint: &Path,
    platform: Option<&Platform>,
    sinks: &[Sink],
    options: &BuildOptions,
) -> Result<BuildResult> {
    let program = ProgramSpec { path: entrypoint.to_path_buf(), platform: platform.cloned() };
    build_images(base, std::slice::from_ref(&program), sinks, options)
}

/// Build one image per program (each for its own platform, on that platform's image of
/// `base`) and write them to `sinks`: one program gives an image, several an image index
/// ([`ImageIndex`]). The programs' layers are compressed concurrently, sharing `--jobs`.
///
/// The entrypoint path is one for all images: `--path`, else `/<file name>` when the file
/// names agree. Two programs for one platform, a program whose ELF contradicts the platform
/// given for it, and a base without a program's platform are errors, before anything is
/// written.
pub fn build_images(
    base: &Base,
    programs: &[ProgramSpec],
    sinks: &[Sink],
    options: &BuildOptions,
) -> Result<BuildResult> {
    if sinks.is_empty() {
        return Err(Error::InvalidOption { option: "output", value: String::new(), reason: "no output given".into() });
    }
    let Some(first) = programs.first() else {
        return Err(Error::InvalidOption { option: "program", value: String::new(), reason: "name a program".into() });
    };
    let epoch = crate::options::source_date_epoch(options.source_date_epoch)?;
    let path = match &options.path {
        Some(path) => Some(path.clone()),
        None => {
            let name = |p: &ProgramSpec| p.path.file_name().map(|n| n.to_os_string());
            if let Some(other) = programs.iter().find(|p| name(p) != name(first)) {
                return Err(Error::InvalidOption {
                    option: "path",
                    value: String::new(),
                    reason: format!(
                        "{} and {} have different file names; pass --path to say where the program goes in every image",
                        first.path.display(),
                        other.path.display()
                    ),
                });
            }
            None
        }
    };
    let path_in_image = path_in_image(&first.path, path.as_deref())?;
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
    let mut opened: Vec<Program> = Vec::with_capacity(programs.len());
    for spec in programs {
        let program = Program::open(&spec.path, spec.platform.as_ref())?;
        if let Some(other) = opened.iter().find(|o| o.platform() == program.platform()) {
            return Err(Error::InvalidOption {
                option: "program",
                value: spec.path.display().to_string(),
                reason: format!(
                    "{} and {} are both for {}; give one program per platform",
                    other.path().display(),
                    spec.path.display(),
                    program.platform()
                ),
            });
        }
        opened.push(program);
    }
    let added = crate::add::entries_of(&options.add, &path_in_image)?;
    // No output may overwrite an input: a program, the base's archive or layout, an --add source.
    let mut inputs: Vec<Input<'_>> = programs.iter().map(|p| Input { what: "the program", path: &p.path }).collect();
    inputs.extend(base.local_path().map(|path| Input { what: "the base", path }));
    inputs.extend(options.add.iter().map(|a| Input { what: "an --add source", path: &a.src }));
    crate::sink::check_outputs(sinks, &inputs)?;
    crate::convert::check_format(options.format, sinks)?;
    if options.profile.is_some()
        && opened.len() > 1
        && !(options.platform_tags && sinks.iter().all(crate::convert::is_push))
    {
        return Err(Error::InvalidOption {
            option: "profile",
            value: "lambda".into(),
            reason: "AWS Lambda takes a single image, not an index: with several programs, push with --platform-tags \
                     and deploy the TAG-<arch> tags"
                .into(),
        });
    }
    let registry = options.registry.cancelled_by(&options.cancel);
    let temp_dir = temp_dir_for(sinks);

    // Resolve the base for every platform and check each program can run on it (or which
    // libraries it needs), before any layer is written.
    let bundling = options.bundle_libs || options.sysroot.is_some() || !options.bundle_lib.is_empty();
    let host = Platform::new("linux", std::env::consts::ARCH, None)?;
    let mut builders = Vec::with_capacity(opened.len());
    let mut bundles: Vec<Option<Bundle>> = Vec::with_capacity(opened.len());
    for program in &opened {
        let mut image = ImageBuilder::from_base(base, program.platform(), &registry)?;
        let bundle = if bundling {
            let own = opened.len() > 1 && program.platform().architecture() == host.architecture();
            let sysroot = if own { None } else { options.sysroot.clone() };
            let bundle_options = BundleOptions { sysroot, extra: options.bundle_lib.clone() };
            Some(bundle::resolve(program.path(), &path_in_image, &bundle_options)?)
        } else {
            None
        };
        if let Some(interpreter) = program.interpreter() {
            match &bundle {
                // Bases with their own C library are refused, and so are directories the layer
                // would turn from a symlink (a merged /usr's /lib → usr/lib) into a directory.
                Some(bundle) => {
                    let tree = image.tree(&temp_dir, &options.cancel)?;
                    if tree.has_file(interpreter) {
                        return Err(Error::BaseHasLibc {
                            base: base.to_string(),
                            interpreter: interpreter.to_string(),
                        });
                    }
                    for path in bundle.directories() {
                        if let Some(what) = tree.non_directory(&path) {
                            return Err(Error::BaseDirectoryConflict { base: base.to_string(), path, what });
                        }
                    }
                }
                None if !options.allow_dynamic && !image.has_file(interpreter, &temp_dir, &options.cancel)? => {
                    return Err(Error::DynamicProgram {
                        path: program.path().to_path_buf(),
                        interpreter: interpreter.to_string(),
                        base: base.to_string(),
                    });
                }
                None => {}
            }
        }
        if let Some(format) = options.format {
            image.set_format(format);
        }
        builders.push(image);
        bundles.push(bundle);
    }
    for sink in sinks {
        sink.preflight()?;
    }

    // The layers, concurrently: the jobs budget is shared between the programs.
    let jobs = match options.compression.jobs {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let per_program = (jobs / opened.len()).max(1);
    let layer_options = |format| LayerOptions {
        format,
        compression: options.compression.clone().with_jobs(if opened.len() == 1 {
            options.compression.jobs
        } else {
            per_program
        }),
        mtime: epoch,
        temp_dir: Some(temp_dir.clone()),
        cancel: options.cancel.clone(),
        progress: options.progress.clone(),
    };
    let version = crate::VERSION;
    let added_layer = match added.is_empty() {
        true => None,
        false => Some(Layer::from_entries(added, &layer_options(builders[0].format()))?),
    };
    // Each program's layers: its bundled libraries (if any), then the program.
    type Layers = (Option<Layer>, Layer);
    let program_layers: Vec<Result<Layers>> = std::thread::scope(|scope| {
        let tasks: Vec<_> = opened
            .iter()
            .zip(&builders)
            .zip(&bundles)
            .map(|((program, image), bundle)| {
                let options = layer_options(image.format());
                let entry = program.entry(&path_in_image);
                let libraries = bundle.as_ref().filter(|b| !b.is_empty()).map(Bundle::layer_entries);
                scope.spawn(move || -> Result<Layers> {
                    let libraries = libraries.map(|entries| Layer::from_entries(entries, &options)).transpose()?;
                    Ok((libraries, Layer::from_entries(vec![entry], &options)?))
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut images = Vec::with_capacity(builders.len());
    for (((mut image, program), layers), bundle) in builders.into_iter().zip(&opened).zip(program_layers).zip(&bundles)
    {
        if let Some(added_layer) = &added_layer {
            let what: Vec<String> = options.add.iter().map(ToString::to_string).collect();
            image.append(added_layer.clone(), format!("zeroimage {version}: ADD {}", what.join(" ")));
        }
        let (libraries, layer) = layers?;
        if let (Some(libraries), Some(bundle)) = (libraries, bundle) {
            let count = bundle.libraries.len();
            let name = program.file_name();
            image.append(
                libraries,
                format!("zeroimage {version}: bundle {count} shared libraries of {name} (--bundle-libs)"),
            );
        }
        image.append(layer, format!("zeroimage {version}: COPY {} {path_in_image}", program.file_name()));
        image.configure(&edits)?;
        for (key, value) in &options.annotations {
            image.set_annotation(key, value)?;
        }
        image.set_created(epoch)?;
        if let Some(profile) = options.profile {
            image.check_profile(profile, &temp_dir)?;
        }
        images.push(image.build()?);
    }

    let tags = if options.tags.is_empty() { default_names(&first.path) } else { options.tags.clone() };
    let write = WriteOptions {
        tags: tags.clone(),
        mtime: epoch,
        cancel: options.cancel.clone(),
        progress: options.progress.clone(),
        registry,
        platform_tags: options.platform_tags,
        docker_platform: options.docker_platform.clone(),
    };
    if images.len() == 1 {
        let written = images[0].write(sinks, &write)?;
        return Ok(BuildResult::new(&images, None, written, sinks, &tags, bundles));
    }
    let index = ImageIndex::new(images)?;
    let written = index.write(sinks, &write)?;
    Ok(BuildResult::new(&index.images, Some(&index), written, sinks, &tags, bundles))
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
