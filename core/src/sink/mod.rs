//! Sinks: where a built image goes. Each is a plain function over an [`Image`].

mod archive;
mod copy;
mod daemon;
mod index;
mod inputs;
mod layout;
mod registry;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::progress::{Progress, ProgressFn, Stage};
use crate::reference::Reference;
pub(crate) use inputs::{check_outputs, Input};
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a built image is written, parsed from the transport strings skopeo uses.
///
/// | string | sink |
/// |---|---|
/// | `oci-archive:PATH`, or a bare `PATH` | a tar that is an OCI image layout *and* a `docker load` archive |
/// | `oci:DIR[:TAG]` | an OCI image-layout directory (created or updated) |
/// | `docker-daemon:NAME[:TAG]` | loaded into the Docker Engine at `$DOCKER_HOST` |
/// | `docker://REF` | pushed to a registry (`registry.example.com/team/app:1.0`) |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sink {
    /// An OCI archive that `docker load` also reads.
    OciArchive {
        /// The archive file.
        path: PathBuf,
    },
    /// An OCI image-layout directory.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to record (default: the first tag's, else `latest`).
        tag: Option<String>,
    },
    /// Loaded into a Docker Engine (`$DOCKER_HOST`, default `/var/run/docker.sock`).
    DockerDaemon {
        /// The name the image gets.
        reference: Reference,
    },
    /// Pushed to a registry: blobs, then the manifest by digest, then the tag.
    Registry {
        /// Where to push (`registry/repository:tag`, or `@sha256:…` to check the digest).
        reference: Reference,
    },
}

impl Sink {
    /// The default output for `program`: `<file name>.tar` in the current directory.
    pub fn default_for(program: &Path) -> Sink {
        let name = program.file_name().map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned());
        Sink::OciArchive { path: PathBuf::from(format!("{name}.tar")) }
    }

    /// The sinks of a build of `program`, as the CLI's `--output` and `--push` name them: the
    /// output (default `<file name>.tar`, none when only pushing), then each push target
    /// (`REF` or `docker://REF`). The Python and Node bindings take the same two options.
    pub fn for_build(program: &Path, output: Option<&str>, push: &[String]) -> Result<Vec<Sink>> {
        let mut sinks = Vec::new();
        match output {
            Some(output) => sinks.push(output.parse::<Sink>()?),
            None if push.is_empty() => sinks.push(Sink::default_for(program)),
            None => {}
        }
        for target in push {
            let reference: Reference = target.strip_prefix("docker://").unwrap_or(target).parse()?;
            sinks.push(Sink::Registry { reference });
        }
        Ok(sinks)
    }

    /// The sink of `zeroimage base`: `output`, else `<name>.tar` for a built-in base; any other
    /// base needs an output. The Python and Node bindings take the same option.
    pub fn for_base(base: &crate::Base, output: Option<&str>) -> Result<Sink> {
        match (output, base) {
            (Some(output), _) => output.parse(),
            (None, crate::Base::Builtin(builtin)) => {
                Ok(Sink::OciArchive { path: PathBuf::from(format!("{}.tar", builtin.name())) })
            }
            (None, _) => Err(Error::InvalidOption {
                option: "output",
                value: String::new(),
                reason: "no output given; name one (it defaults only for built-in bases)".into(),
            }),
        }
    }

    /// A directory on the same file system as the output, for temporary files.
    pub(crate) fn scratch_dir(&self) -> PathBuf {
        match self {
            Sink::OciArchive { path } => parent_dir(path),
            Sink::OciLayout { dir, .. } => parent_dir(dir),
            Sink::DockerDaemon { .. } | Sink::Registry { .. } => std::env::temp_dir(),
        }
    }

    /// Check, before any work, that the output can be written where it is asked.
    pub(crate) fn preflight(&self) -> Result<()> {
        match self {
            Sink::OciArchive { path } => {
                if path.is_dir() {
                    return Err(Error::InvalidTransport {
                        what: "output",
                        input: self.to_string(),
                        reason: "it is a directory; use oci:DIR for an image-layout directory, or name a .tar file"
                            .into(),
                    });
                }
                if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
                    return Err(Error::InvalidTransport {
                        what: "output",
                        input: self.to_string(),
                        reason: NOT_A_REGULAR_FILE.into(),
                    });
                }
                let dir = parent_dir(path);
                if !dir.is_dir() {
                    return Err(Error::io("write into", &dir, std::io::ErrorKind::NotFound.into()));
                }
                Ok(())
            }
            Sink::OciLayout { dir, .. } => {
                if dir.exists() && !dir.is_dir() {
                    return Err(Error::InvalidTransport {
                        what: "output",
                        input: self.to_string(),
                        reason: "it exists and is not a directory".into(),
                    });
                }
                let parent = parent_dir(dir);
                if !parent.is_dir() {
                    return Err(Error::io("write into", &parent, std::io::ErrorKind::NotFound.into()));
                }
                Ok(())
            }
            Sink::DockerDaemon { .. } => daemon::preflight(),
            Sink::Registry { .. } => Ok(()),
        }
    }
}

/// Write `image` to every sink, all or nothing as far as the outputs allow:
///
/// 1. archives and layouts are written completely, checked and flushed to disk, but not yet
///    in place (an archive under a temporary name; a layout's new blobs are written, locked
///    against other builds, and its `index.json` is not yet replaced);
/// 2. then every push and Docker load, in order; pushes to one repository go together (blobs
///    once, then the manifest by digest, then every tag), and later repositories of the same
///    registry mount blobs from earlier ones;
/// 3. only then are archives renamed into place and `index.json` files replaced.
///
/// When any step fails (or the build is cancelled) before step 3, no local output changes: a
/// temporary archive disappears, and a layout loses the blobs and directories this build
/// added. Pushes and loads that completed before a later one failed stay done.
pub(crate) fn write_all<'a>(
    sinks: &[Sink],
    top_for: &dyn Fn(&Sink) -> Top<'a>,
    ctx: &WriteContext<'_>,
) -> Result<Vec<Written>> {
    let mut staged = Vec::new();
    for sink in sinks {
        if ctx.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match (sink, top_for(sink)) {
            (Sink::OciArchive { path }, Top::Image(image)) => {
                staged.push(Staged::Archive(archive::stage(path, image, ctx)?))
            }
            (Sink::OciArchive { path }, Top::Index { index, docker, .. }) => {
                staged.push(Staged::Archive(index::stage_archive(path, index, docker, ctx)?))
            }
            (Sink::OciLayout { dir, tag }, Top::Image(image)) => {
                staged.push(Staged::Layout(layout::stage(dir, tag.as_deref(), image, ctx)?))
            }
            (Sink::OciLayout { dir, tag }, Top::Index { index, .. }) => {
                staged.push(Staged::Layout(layout::stage_index(dir, tag.as_deref(), index, ctx)?))
            }
            (Sink::DockerDaemon { .. } | Sink::Registry { .. }, _) => {}
        }
    }
    let mut pushed: Vec<(String, String)> = Vec::new();
    let mut written = Vec::with_capacity(sinks.len());
    for (i, sink) in sinks.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let top = top_for(sink);
        let mut digest = top.digest().to_string();
        match sink {
            Sink::Registry { reference } => {
                let same =
                    |r: &Reference| r.registry() == reference.registry() && r.repository() == reference.repository();
                if !pushed.iter().any(|(reg, repo)| reg == reference.registry() && repo == reference.repository()) {
                    let group: Vec<&Reference> = sinks[i..]
                        .iter()
                        .filter_map(|s| match s {
                            Sink::Registry { reference } if same(reference) => Some(reference),
                            _ => None,
                        })
                        .collect();
                    match top {
                        Top::Image(image) => registry::push(&group, image, ctx, &mut pushed)?,
                        Top::Index { index, platform_tags, .. } => {
                            registry::push_index(&group, index, ctx, &mut pushed, platform_tags)?
                        }
                    }
                }
            }
            Sink::DockerDaemon { reference } => {
                let image = match top {
                    Top::Image(image) => image,
                    // The engine loads one image per name: its own platform's, and says so.
                    Top::Index { index, .. } => {
                        let platform = daemon::platform()?;
                        let image = index.image(&platform).ok_or_else(|| Error::InvalidOption {
                            option: "output",
                            value: sink.to_string(),
                            reason: format!(
                                "the Docker engine runs {platform}; the index has {}",
                                index::platforms(index)
                            ),
                        })?;
                        if let Some(log) = &ctx.registry.log {
                            log.log(&format!("{sink}: loading the {platform} image, the engine's own platform"));
                        }
                        image
                    }
                };
                daemon::write(reference, image, ctx)?;
                digest = image.manifest_digest.clone();
            }
            Sink::OciArchive { .. } | Sink::OciLayout { .. } => {}
        }
        written.push(Written { output: sink.to_string(), digest });
    }
    // Every remote output is done: a late Ctrl-C no longer undoes the local ones.
    staged.into_iter().try_for_each(Staged::commit)?;
    Ok(written)
}

/// What [`write_all`] writes: one image, or an index of images.
#[derive(Clone, Copy)]
pub(crate) enum Top<'a> {
    /// One image.
    Image(&'a Image),
    /// An index; `docker` is the image an archive's `manifest.json` names.
    Index { index: &'a crate::ImageIndex, docker: &'a Image, platform_tags: bool },
}

impl Top<'_> {
    fn digest(&self) -> &str {
        match self {
            Top::Image(image) => &image.manifest_digest,
            Top::Index { index, .. } => &index.manifest_digest,
        }
    }
}

/// How [`Image::write`](crate::Image::write) writes an image.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// Names for the image (`--tag`): `RepoTags` and `index.json` names in archives and
    /// layouts. Registry pushes use their own references.
    pub tags: Vec<Reference>,
    /// mtime of archive entries (the build's `SOURCE_DATE_EPOCH`).
    pub mtime: u64,
    /// Set it to stop; nothing is written then.
    pub cancel: CancelToken,
    /// Called with [`Stage::Write`] events.
    pub progress: Option<ProgressFn>,
    /// How to reach registries (pushes).
    pub registry: crate::registry::RegistryOptions,
    /// For an [`ImageIndex`](crate::ImageIndex) pushed to a registry: also tag each platform's
    /// image alone, as `TAG-amd64`, `TAG-arm64`, `TAG-armv7`… (`--platform-tags`; AWS Lambda
    /// takes no index).
    pub platform_tags: bool,
    /// For an [`ImageIndex`](crate::ImageIndex) written to an archive: the platform whose image
    /// `manifest.json` names for Docker 20.10's `docker load` (`--docker-platform`); default
    /// linux/amd64 when the index has it, else its first image.
    pub docker_platform: Option<crate::Platform>,
}

impl fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteOptions")
            .field("tags", &self.tags)
            .field("mtime", &self.mtime)
            .field("cancel", &self.cancel)
            .field("registry", &self.registry)
            .field("platform_tags", &self.platform_tags)
            .field("docker_platform", &self.docker_platform)
            .finish_non_exhaustive()
    }
}

/// What one sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The sink, as a transport string (`oci-archive:hello.tar`, `docker://reg/repo:tag`).
    pub output: String,
    /// The manifest digest the sink holds.
    pub digest: String,
}

/// Check every sink can be written (there is one, and each passes its preflight), and the
/// context every sink gets from `options`.
fn prepare<'a>(sinks: &[Sink], options: &'a WriteOptions) -> Result<WriteContext<'a>> {
    if sinks.is_empty() {
        return Err(Error::InvalidOption { option: "output", value: String::new(), reason: "no output given".into() });
    }
    for sink in sinks {
        sink.preflight()?;
    }
    Ok(WriteContext {
        tags: &options.tags,
        mtime: options.mtime,
        cancel: &options.cancel,
        progress: options.progress.as_ref(),
        registry: &options.registry,
    })
}

/// Write `image` to `sinks` (see [`Image::write`](crate::Image::write)).
pub(crate) fn write_image(sinks: &[Sink], image: &Image, options: &WriteOptions) -> Result<Vec<Written>> {
    let ctx = prepare(sinks, options)?;
    // Archives, layouts and the engine get OCI media types; pushes the image's own format
    // with uncompressed base layers gzipped (see crate::convert).
    let local = sinks.iter().any(|s| !is_push(s)).then(|| crate::convert::local_image(image)).transpose()?;
    let push = match sinks.iter().any(is_push) {
        true => Some(crate::convert::push_image(image, &crate::Compression::default(), &temp_dir_for(sinks))?),
        false => None,
    };
    let top_for = |sink: &Sink| Top::Image(pick(sink, local.as_ref(), push.as_ref()));
    write_all(sinks, &top_for, &ctx)
}

/// Write `index` to `sinks` (see [`ImageIndex::write`](crate::ImageIndex::write)).
pub(crate) fn write_index(sinks: &[Sink], index: &crate::ImageIndex, options: &WriteOptions) -> Result<Vec<Written>> {
    index::docker_image(index, options.docker_platform.as_ref())?;
    let ctx = prepare(sinks, options)?;
    let convert = |f: &dyn Fn(&Image) -> Result<Image>| -> Result<crate::ImageIndex> {
        crate::ImageIndex::new(index.images.iter().map(f).collect::<Result<Vec<_>>>()?)
    };
    let local = match sinks.iter().any(|s| !is_push(s)) {
        true => Some(convert(&crate::convert::local_image)?),
        false => None,
    };
    let push = match sinks.iter().any(is_push) {
        true => {
            let scratch = temp_dir_for(sinks);
            Some(convert(&|image| crate::convert::push_image(image, &crate::Compression::default(), &scratch))?)
        }
        false => None,
    };
    let docker = local.as_ref().map(|l| index::docker_image(l, options.docker_platform.as_ref())).transpose()?;
    let top_for = |sink: &Sink| {
        let index = pick(sink, local.as_ref(), push.as_ref());
        Top::Index { index, docker: docker.unwrap_or(&index.images[0]), platform_tags: options.platform_tags }
    };
    write_all(sinks, &top_for, &ctx)
}

/// What `sink` gets: the push variant for registries, the local one for the rest.
fn pick<'a, T>(sink: &Sink, local: Option<&'a T>, push: Option<&'a T>) -> &'a T {
    let chosen = if is_push(sink) { push } else { local };
    chosen.expect("a variant for every kind of sink in the build")
}

fn is_push(sink: &Sink) -> bool {
    crate::convert::is_push(sink)
}

/// The one place temporary files of a build go: beside the first archive or layout output
/// (the same file system, so they can be renamed or copied by the kernel), else the system's
/// temporary directory.
pub fn temp_dir_for(sinks: &[Sink]) -> PathBuf {
    sinks
        .iter()
        .find(|s| matches!(s, Sink::OciArchive { .. } | Sink::OciLayout { .. }))
        .map_or_else(std::env::temp_dir, Sink::scratch_dir)
}

/// A local output written but not yet in place.
enum Staged {
    Archive(AtomicFile),
    Layout(layout::Staged),
}

impl Staged {
    fn commit(self) -> Result<()> {
        match self {
            Staged::Archive(file) => file.persist(),
            Staged::Layout(layout) => layout.commit(),
        }
    }
}

/// Why an archive is not written over a device, pipe or socket.
const NOT_A_REGULAR_FILE: &str = "it is a device, pipe or socket, not a regular file, and renaming the finished \
    archive into place would replace it; name a regular file, then copy or pipe the archive from there";

/// What every sink gets besides the image.
pub(crate) struct WriteContext<'a> {
    /// Names for the image (`--tag`).
    pub tags: &'a [Reference],
    /// mtime for archive entries.
    pub mtime: u64,
    pub cancel: &'a CancelToken,
    pub progress: Option<&'a ProgressFn>,
    /// How to reach registries (the registry sink).
    pub registry: &'a crate::registry::RegistryOptions,
}

impl WriteContext<'_> {
    pub(crate) fn report(&self, current: u64, total: u64) {
        if let Some(progress) = self.progress {
            progress(&Progress { stage: Stage::Write, current, total: Some(total) });
        }
    }
}

impl FromStr for Sink {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |reason: &str| Error::InvalidTransport { what: "output", input: s.to_string(), reason: reason.to_string() };
        let (transport, rest) = match s.split_once(':') {
            Some((t, rest)) if is_transport_name(t) => (t, rest),
            _ => ("", s),
        };
        match transport {
            "" | "oci-archive" => {
                if rest.is_empty() {
                    return Err(bad("the archive path is empty"));
                }
                Ok(Sink::OciArchive { path: PathBuf::from(rest) })
            }
            "oci" => {
                let (dir, tag) = match rest.split_once(':') {
                    Some((dir, tag)) => (dir, Some(tag)),
                    None => (rest, None),
                };
                if dir.is_empty() {
                    return Err(bad("the layout directory is empty"));
                }
                if let Some(tag) = tag {
                    if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(bad("the name after the directory is empty or has whitespace"));
                    }
                }
                Ok(Sink::OciLayout { dir: PathBuf::from(dir), tag: tag.map(str::to_string) })
            }
            "docker" => {
                let reference: Reference =
                    rest.strip_prefix("//").ok_or_else(|| bad("write docker://REGISTRY/REPOSITORY[:TAG]"))?.parse()?;
                Ok(Sink::Registry { reference })
            }
            "docker-daemon" => {
                let reference: Reference = rest.parse()?;
                if reference.digest().is_some() {
                    return Err(bad("name the image NAME[:TAG]; a digest cannot be loaded into Docker"));
                }
                Ok(Sink::DockerDaemon { reference })
            }
            other => Err(Error::Unsupported {
                what: format!("output transport {other:?}"),
                hint: Some(
                    "outputs are oci-archive:PATH (or a bare PATH), oci:DIR[:TAG], docker-daemon:NAME[:TAG] and docker://REF".into(),
                ),
            }),
        }
    }
}

/// Transport names we recognise before a `:`; anything else is part of a path.
fn is_transport_name(t: &str) -> bool {
    matches!(t, "oci-archive" | "oci" | "docker-archive" | "docker-daemon" | "docker" | "containers-storage" | "dir")
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::OciArchive { path } => write!(f, "oci-archive:{}", path.display()),
            Sink::OciLayout { dir, tag: Some(tag) } => write!(f, "oci:{}:{tag}", dir.display()),
            Sink::OciLayout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Sink::DockerDaemon { reference } => write!(f, "docker-daemon:{}", reference.familiar()),
            Sink::Registry { reference } => write!(f, "docker://{reference}"),
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file written under a temporary name next to its destination and renamed into place
/// by [`commit`](Self::commit); dropped without commit, it disappears.
pub(crate) struct AtomicFile {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub(crate) fn create(dest: &Path) -> Result<AtomicFile> {
        if fs::metadata(dest).is_ok_and(|m| !m.is_file()) {
            let refused = std::io::Error::new(std::io::ErrorKind::InvalidInput, NOT_A_REGULAR_FILE);
            return Err(Error::io("replace", dest, refused));
        }
        let dir = parent_dir(dest);
        let name = dest.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".zeroimage-tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("create a temporary file in", &dir, e))?;
        Ok(AtomicFile { temp, dest: dest.to_path_buf() })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Flush to disk, make it world-readable like any new file, and rename over `dest`.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.prepare()?;
        self.temp.as_file().sync_all().map_err(|e| Error::io("sync", self.temp.path(), e))?;
        self.persist()
    }

    /// [`commit`](Self::commit), but only if `check` (run while the file is flushed to disk,
    /// on another thread) succeeds; otherwise the file disappears and `check`'s error is
    /// returned.
    pub(crate) fn commit_after(mut self, check: impl FnOnce() -> Result<()>) -> Result<()> {
        self.sync_after(check)?;
        self.persist()
    }

    /// Flush the file to disk while `check` runs; [`persist`](Self::persist) then puts it in
    /// place. An error from either leaves the file to disappear when dropped.
    pub(crate) fn sync_after(&mut self, check: impl FnOnce() -> Result<()>) -> Result<()> {
        self.prepare()?;
        let file = self.temp.as_file();
        let (checked, synced) = std::thread::scope(|scope| {
            let sync = scope.spawn(|| file.sync_all());
            let checked = check();
            (checked, sync.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        checked?;
        synced.map_err(|e| Error::io("sync", self.temp.path(), e))
    }

    /// Flush what is buffered and make the file world-readable like any new file.
    fn prepare(&mut self) -> Result<()> {
        let temp_path = self.temp.path().to_path_buf();
        self.temp.as_file_mut().flush().map_err(|e| Error::io("write", &temp_path, e))?;
        set_readable(self.temp.as_file()).map_err(|e| Error::io("set permissions of", &temp_path, e))
    }

    /// Rename into place (the file is on disk).
    pub(crate) fn persist(self) -> Result<()> {
        self.temp.persist(&self.dest).map_err(|e| Error::io("rename a temporary file to", &self.dest, e.error))?;
        Ok(())
    }
}

#[cfg(unix)]
fn set_readable(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_readable(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// Write `bytes` to `dest` atomically.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(dest)?;
    let temp_path = file.path().to_path_buf();
    file.file().write_all(bytes).map_err(|e| Error::io("write", &temp_path, e))?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sinks() {
        let cases = [
            ("out.tar", Sink::OciArchive { path: "out.tar".into() }),
            ("oci-archive:out.tar", Sink::OciArchive { path: "out.tar".into() }),
            ("./a:b.tar", Sink::OciArchive { path: "./a:b.tar".into() }),
            ("oci:./layout-dir", Sink::OciLayout { dir: "./layout-dir".into(), tag: None }),
            ("oci:dir:v1", Sink::OciLayout { dir: "dir".into(), tag: Some("v1".into()) }),
            ("docker-daemon:prog:dev", Sink::DockerDaemon { reference: "prog:dev".parse().unwrap() }),
            ("docker://reg.io:5000/a/b:1", Sink::Registry { reference: "reg.io:5000/a/b:1".parse().unwrap() }),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Sink>().unwrap(), want, "{input}");
        }
        assert_eq!("oci:dir:v1".parse::<Sink>().unwrap().to_string(), "oci:dir:v1");
        assert_eq!("docker://reg.io/a:1".parse::<Sink>().unwrap().to_string(), "docker://reg.io/a:1");
        for bad in [
            "",
            "oci-archive:",
            "oci:",
            "oci:dir:",
            "oci:dir:a b",
            "docker-daemon:",
            "docker-daemon:Bad",
            "docker:reg.io/a",
            "docker://Bad",
        ] {
            let err = bad.parse::<Sink>().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad}: {err}");
        }
        assert!(matches!("dir:x".parse::<Sink>(), Err(Error::Unsupported { .. })));
    }

    #[test]
    fn default_output_is_named_after_the_program() {
        assert_eq!(Sink::default_for(Path::new("./dist/hello")), Sink::OciArchive { path: "hello.tar".into() });
    }

    #[test]
    fn atomic_file_leaves_nothing_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.tar");
        fs::write(&dest, b"good").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.file().write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read(&dest).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }
}
