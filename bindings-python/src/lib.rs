//! `zeroimage._zeroimage`: the native module behind the `zeroimage` Python package.
//!
//! Thin by design. `build_image` turns its keyword arguments into JSON and hands them to the
//! core's one option schema ([`BuildSpec::from_json`]), which rejects unknown keywords and
//! wrong shapes and checks every bound; the binding adds only what is Python's: callbacks,
//! cancellation (Ctrl-C, a cancel token, a cancelled asyncio task), the GIL and exceptions.
//! [`Image`] is the same model as objects: a thin wrapper over the core's [`ImageBuilder`].
//! Errors map to the exception class of their [`ErrorKind`] (defined in Python, in
//! `zeroimage/_errors.py`), with hints spelled the Python way (`allow_dynamic=True`).
//!
//! [`ErrorKind`]: zeroimage::ErrorKind

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use zeroimage::registry::Logger;
use zeroimage::{
    Base, BaseOptions, BuildRequest, BuildSpec, CancelToken, Entry, EntryKind, Error, Format, Frontend, Hooks,
    ImageBuilder, Layer, LayerOptions, Platform, Program, Sink, WriteOptions,
};

/// How often a thread waiting for a build wakes up to let Python handle signals (Ctrl-C) and
/// to look at the caller's cancel token or event.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// How deep option values may nest (lists of objects of lists…) before they are refused.
const MAX_DEPTH: usize = 16;

/// What a build produced.
#[pyclass(frozen, get_all, module = "zeroimage._zeroimage")]
#[derive(Debug)]
struct BuildResult {
    /// The manifest digest (`sha256:…`): the image's identity.
    digest: String,
    /// The config digest: Docker's image ID.
    config_digest: String,
    /// Bytes of the image as stored: manifest, config and every layer.
    size: u64,
    /// The image's platform (`linux/amd64`).
    platform: String,
    /// The first output, as a transport string (`oci-archive:hello.tar`).
    output: String,
    /// Every output written, as transport strings.
    outputs: Vec<String>,
    /// The names given to the image (`docker.io/library/hello:latest`).
    tags: Vec<String>,
    /// Each `push` target as `REPOSITORY@DIGEST` (`localhost:5000/hello@sha256:…`).
    pushed: Vec<String>,
    /// The index digest when several programs made an image index, else `None`.
    index_digest: Option<String>,
    /// Each platform's manifest digest (`{"linux/amd64": "sha256:…"}`).
    manifests: std::collections::BTreeMap<String, String>,
    /// The digest each output holds (`{"oci-archive:hello.tar": "sha256:…"}`).
    digests: std::collections::BTreeMap<String, String>,
    /// The paths in the image of the shared libraries bundled (`bundle_libs=True`).
    bundled: Vec<String>,
}

#[pymethods]
impl BuildResult {
    fn __repr__(&self) -> String {
        format!(
            "BuildResult(digest={:?}, config_digest={:?}, size={}, platform={:?}, output={:?}, tags={:?}, pushed={:?})",
            self.digest, self.config_digest, self.size, self.platform, self.output, self.tags, self.pushed
        )
    }
}

impl BuildResult {
    /// The binding's result for a core result.
    fn new(r: zeroimage::BuildResult) -> Self {
        BuildResult {
            pushed: r.pushed,
            digest: r.digest,
            config_digest: r.config_digest,
            size: r.size,
            platform: r.platform.to_string(),
            output: r.outputs.first().cloned().unwrap_or_default(),
            outputs: r.outputs,
            tags: r.tags,
            index_digest: r.index_digest,
            manifests: r.manifests.into_iter().map(|m| (m.platform.to_string(), m.digest)).collect(),
            digests: r.written.into_iter().map(|w| (w.output, w.digest)).collect(),
            bundled: r.bundled.map(|b| b.libraries.into_iter().map(|l| l.path).collect()).unwrap_or_default(),
        }
    }
}

/// A progress event: `current` of `total` bytes done in `stage` (`"layer"` or `"write"`).
#[pyclass(frozen, get_all, module = "zeroimage._zeroimage")]
#[derive(Debug)]
struct Progress {
    /// `"layer"` (reading and compressing files into a layer) or `"write"` (writing an output).
    stage: &'static str,
    /// Bytes done so far in this stage.
    current: u64,
    /// Bytes to do in this stage, when known.
    total: Option<u64>,
}

#[pymethods]
impl Progress {
    fn __repr__(&self) -> String {
        let total = self.total.map_or_else(|| "None".to_string(), |t| t.to_string());
        format!("Progress(stage={:?}, current={}, total={total})", self.stage, self.current)
    }
}

/// Stops the builds it is given to (`cancel=token`) from any thread: `token.cancel()`. A
/// cancelled build raises `CancelledError` and writes nothing.
#[pyclass(frozen, name = "CancelToken", module = "zeroimage._zeroimage")]
#[derive(Debug, Default)]
struct CancelToken_ {
    token: CancelToken,
}

#[pymethods]
impl CancelToken_ {
    #[new]
    fn py_new() -> Self {
        Self::default()
    }

    /// Ask every build holding this token to stop as soon as it can.
    fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!("CancelToken(cancelled={})", self.token.is_cancelled())
    }
}

/// Build an image of the program `entrypoint` and write it to `output`; return a `BuildResult`.
///
/// The options are keyword-only and are the CLI's build options (see `_zeroimage.pyi`):
/// `base` is `--from`, `tag`, `env`, `labels`, `annotations`, `add`, … — one schema in the
/// core, shared with the CLI and Node. An unknown keyword or a value of the wrong shape raises
/// `InvalidOptionError` (also a `TypeError`) naming it. `log` and `progress` are callbacks:
/// if one raises, the build stops, nothing is written, and the exception propagates. `cancel`
/// (a `CancelToken` or a `threading.Event`) stops the build from another thread.
///
/// The GIL is released for the whole build. Errors raise a `ZeroImageError` subclass whose
/// message is the one the CLI prints; Ctrl-C cancels the build and raises `KeyboardInterrupt`.
#[pyfunction]
#[pyo3(signature = (entrypoint, *, log = None, progress = None, cancel = None, **options))]
fn build_image(
    py: Python<'_>,
    entrypoint: &Bound<'_, PyAny>,
    log: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    cancel: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<BuildResult> {
    let mut json = options_json(py, options)?;
    // One program (a path), or several: a list of paths (`PLATFORM=PATH` allowed) or a mapping
    // of platform to path, which make a multi-platform image index.
    let programs = match path_json(entrypoint, "entrypoint") {
        Ok(path) => path,
        Err(_) => to_json(py, entrypoint, "entrypoint", 0)?,
    };
    json.insert("entrypoint".into(), programs);
    check_callable(py, "log", log.as_ref())?;
    check_callable(py, "progress", progress.as_ref())?;
    let watch = Watch::new(cancel)?;
    let spec = BuildSpec::from_json(Value::Object(json), Frontend::Python).map_err(|e| option_error(py, &e))?;
    let token = CancelToken::new();
    let callbacks = Callbacks::new(&token);
    let hooks = Hooks {
        cancel: token.clone(),
        progress: progress.map(|f| callbacks.progress(f)),
        log: log.map(|f| callbacks.logger(f)),
    };
    let request = spec.into_request(hooks).map_err(|e| to_pyerr(py, &e))?;
    callbacks.reraise()?;
    let result = run_detached(py, &token, &watch, || request.run())?;
    callbacks.reraise()?;
    result.map(BuildResult::new).map_err(|e| to_pyerr(py, &e))
}

/// Write a base image on its own, as `zeroimage base` does; return a `BuildResult`.
///
/// - base: the base to write (default `"builtin:static"`); any base the CLI's `--from` takes.
/// - output: as for `build_image`; default `<builtin name>.tar` for a built-in base (other
///   bases need one).
/// - tag: one name or a list (default `zeroimage-builtin-<name>:<version>` for a built-in).
/// - platform: the platform the config declares (default `linux/<this machine's architecture>`).
/// - format (`"oci"` or `"docker"`), annotations, progress, cancel.
///
/// The GIL is released while the image is written; errors raise `ZeroImageError` subclasses.
#[pyfunction]
#[pyo3(signature = (
    base = "builtin:static", *, output = None, tag = None, platform = None, format = None, annotations = None,
    progress = None, cancel = None,
))]
#[allow(clippy::too_many_arguments)]
fn write_base(
    py: Python<'_>,
    base: &str,
    output: Option<&Bound<'_, PyAny>>,
    tag: Option<&Bound<'_, PyAny>>,
    platform: Option<&str>,
    format: Option<&str>,
    annotations: Option<&Bound<'_, PyAny>>,
    progress: Option<Py<PyAny>>,
    cancel: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuildResult> {
    let output = output.map(output_string).transpose()?;
    let tags = tag.map(|t| strings("tag", t)).transpose()?.unwrap_or_default();
    let annotations = annotations.map(|m| pairs("annotations", m)).transpose()?.unwrap_or_default();
    check_callable(py, "progress", progress.as_ref())?;
    let watch = Watch::new(cancel)?;

    let core = |py: Python<'_>, e: Error| to_pyerr(py, &e);
    let base: Base = base.parse().map_err(|e| core(py, e))?;
    let platform = platform.map(str::parse::<Platform>).transpose().map_err(|e| core(py, e))?;
    let sink = Sink::for_base(&base, output.as_deref()).map_err(|e| core(py, e))?;
    let token = CancelToken::new();
    let callbacks = Callbacks::new(&token);
    let mut options = BaseOptions {
        format: format.map(str::parse::<Format>).transpose().map_err(|e| core(py, e))?,
        annotations: annotations.into_iter().collect(),
        progress: progress.map(|f| callbacks.progress(f)),
        cancel: token.clone(),
        ..BaseOptions::default()
    };
    for tag in &tags {
        options.tags.push(tag.parse().map_err(|e| core(py, e))?);
    }
    let result = run_detached(py, &token, &watch, || {
        zeroimage::write_base(&base, platform.as_ref(), std::slice::from_ref(&sink), &options)
    })?;
    callbacks.reraise()?;
    result.map(BuildResult::new).map_err(|e| core(py, e))
}

/// Log in to `registry`: check the credentials against it, then store them as `docker login`
/// does (the configured credential helper, else `auths` in `$DOCKER_CONFIG/config.json`).
/// Return where they were stored. The GIL is released meanwhile.
#[pyfunction]
#[pyo3(signature = (registry, username, password, *, log = None, **options))]
fn login(
    py: Python<'_>,
    registry: &str,
    username: &str,
    password: &str,
    log: Option<Py<PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    check_callable(py, "log", log.as_ref())?;
    let token = CancelToken::new();
    let callbacks = Callbacks::new(&token);
    let hooks = Hooks { log: log.map(|f| callbacks.logger(f)), ..Hooks::default() };
    let request = settings(py, options, &LOGIN_OPTIONS, Value::Null, hooks)?;
    let registry_options = request.options.registry;
    let result = py.detach(|| zeroimage::registry::login(registry, username, password, &registry_options));
    callbacks.reraise()?;
    result.map(|source| source.to_string()).map_err(|e| to_pyerr(py, &e))
}

/// Log out of `registry`: erase its stored credentials. Return whether there were any.
#[pyfunction]
fn logout(py: Python<'_>, registry: &str) -> PyResult<bool> {
    py.detach(|| zeroimage::registry::logout(registry)).map_err(|e| to_pyerr(py, &e))
}

/// The build options `login` takes (its registry options).
const LOGIN_OPTIONS: [&str; 3] = ["insecure", "ca_cert", "timeout"];

/// The build options `Image.from_base` takes: how to reach the base, which platform, and how
/// its layers are written.
const IMAGE_OPTIONS: [&str; 13] = [
    "platform",
    "os",
    "arch",
    "variant",
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

/// Options outside a build of one program (`login`, `Image.from_base`, `Image.write`), read
/// through the same schema as a build's so that each is parsed and checked in one place: only
/// `allowed` keys, the schema's program slot filled with `program` (or a stand-in name; no
/// file is opened).
fn settings(
    py: Python<'_>,
    options: Option<&Bound<'_, PyDict>>,
    allowed: &[&str],
    program: Value,
    hooks: Hooks,
) -> PyResult<BuildRequest> {
    let mut json = options_json(py, options)?;
    let elsewhere: Vec<String> = json.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
    json.insert("program".into(), if program.is_null() { Value::from("image") } else { program });
    // Unknown keys first (the schema names the nearest), then options of builds only.
    let spec = BuildSpec::from_json(Value::Object(json), Frontend::Python).map_err(|e| option_error(py, &e))?;
    if let Some(key) = elsewhere.first() {
        let reason = format!("it is not an option here (they are {})", allowed.join(", "));
        return Err(option_error(py, &Error::InvalidOption { option: "options", value: key.clone(), reason }));
    }
    spec.into_request(hooks).map_err(|e| to_pyerr(py, &e))
}

/// An image being composed: a base for one platform, layers added on top (files, the program),
/// config edits, then `write()` to outputs and registries. A thin wrapper over the core's
/// `ImageBuilder`: nothing is downloaded until it is needed, and layers are written to
/// temporary files as they are added (deleted with the image).
#[pyclass(module = "zeroimage._zeroimage")]
struct Image {
    /// The base, as given (for messages).
    base: String,
    builder: ImageBuilder,
    layer_options: LayerOptions,
    write_options: WriteOptions,
    /// The program's host path and its path in the image, once added.
    program: Option<(PathBuf, String)>,
    /// The files `add_files` put in the image, where the program may not go.
    files: BTreeSet<String>,
}

#[pymethods]
impl Image {
    /// Resolve `base` (any base the CLI's `--from` takes) for `platform` (default
    /// `linux/<this machine's architecture>`): its manifest and config, no layer bytes yet.
    /// Keyword options as `build_image` names them: platform (or os/arch/variant), format,
    /// compression, compression_level, jobs, source_date_epoch, and the registry options
    /// insecure, ca_cert, creds, timeout; `log` is called with the registry client's log lines.
    #[staticmethod]
    #[pyo3(signature = (base = "scratch", *, log = None, **options))]
    fn from_base(
        py: Python<'_>,
        base: &str,
        log: Option<Py<PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Image> {
        check_callable(py, "log", log.as_ref())?;
        let token = CancelToken::new();
        let callbacks = Callbacks::new(&token);
        let hooks = Hooks { log: log.map(|f| callbacks.logger(f)), ..Hooks::default() };
        let mut request = settings(py, options, &IMAGE_OPTIONS, Value::Null, hooks)?;
        request.base = base.parse().map_err(|e| to_pyerr(py, &e))?;
        let platform = match request.platform.take() {
            Some(p) => p,
            None => Platform::new("linux", std::env::consts::ARCH, None).map_err(|e| to_pyerr(py, &e))?,
        };
        let epoch =
            zeroimage::options::source_date_epoch(request.options.source_date_epoch).map_err(|e| to_pyerr(py, &e))?;
        let registry = request.options.registry.clone();
        let resolved = py.detach(|| ImageBuilder::from_base(&request.base, &platform, &registry));
        callbacks.reraise()?;
        let mut builder = resolved.map_err(|e| to_pyerr(py, &e))?;
        builder.set_created(epoch).map_err(|e| to_pyerr(py, &e))?;
        if let Some(format) = request.options.format {
            builder.set_format(format);
        }
        let layer_options = LayerOptions {
            format: builder.format(),
            compression: request.options.compression.clone(),
            mtime: epoch,
            ..LayerOptions::default()
        };
        let write_options = WriteOptions { mtime: epoch, registry, ..WriteOptions::default() };
        Ok(Image {
            base: request.base.to_string(),
            builder,
            layer_options,
            write_options,
            program: None,
            files: BTreeSet::new(),
        })
    }

    /// The platform the image is for (`linux/amd64`).
    #[getter]
    fn platform(&self) -> String {
        self.builder.platform().to_string()
    }

    /// `"oci"` or `"docker"`: the media types the image is written with.
    #[getter]
    fn format(&self) -> &'static str {
        match self.builder.format() {
            Format::Docker => "docker",
            _ => "oci",
        }
    }

    /// How many layers the image has so far (the base's included).
    #[getter]
    fn layer_count(&self) -> usize {
        self.builder.layers().len()
    }

    /// Add host files and directories in one new layer: `"SRC:DEST"` (as the CLI's `--add`),
    /// `{"src": …, "dest": …, "owner": "UID[:GID]", "follow_symlinks": bool}`, or a list of
    /// them. `owner` and `follow_symlinks` apply to every item that does not say otherwise.
    /// Add files before the program, so that the program's layer stays on top and its digest
    /// does not change when only the files do.
    #[pyo3(signature = (add, *, owner = None, follow_symlinks = false, progress = None, cancel = None))]
    fn add_files(
        &mut self,
        py: Python<'_>,
        add: &Bound<'_, PyAny>,
        owner: Option<&Bound<'_, PyAny>>,
        follow_symlinks: bool,
        progress: Option<Py<PyAny>>,
        cancel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        check_callable(py, "progress", progress.as_ref())?;
        let watch = Watch::new(cancel)?;
        let mut json = Map::new();
        json.insert("program".into(), Value::from("image"));
        json.insert("add".into(), to_json(py, add, "add", 0)?);
        if let Some(owner) = owner {
            json.insert("add_owner".into(), to_json(py, owner, "owner", 0)?);
        }
        json.insert("add_follow_symlinks".into(), Value::Bool(follow_symlinks));
        let spec = BuildSpec::from_json(Value::Object(json), Frontend::Python).map_err(|e| option_error(py, &e))?;
        let adds = spec.into_request(Hooks::default()).map_err(|e| to_pyerr(py, &e))?.options.add;
        if adds.is_empty() {
            return Err(PyTypeError::new_err("add_files() needs at least one \"SRC:DEST\""));
        }
        let token = CancelToken::new();
        let callbacks = Callbacks::new(&token);
        let options = self.layer_options(&callbacks, progress);
        let program = self.program.as_ref().map_or("", |(_, p)| p.as_str());
        let result = run_detached(py, &token, &watch, || -> zeroimage::Result<(Layer, Vec<Entry>)> {
            let entries = zeroimage::add::entries_of(&adds, program)?;
            Ok((Layer::from_entries(entries.clone(), &options)?, entries))
        })?;
        callbacks.reraise()?;
        let (layer, entries) = result.map_err(|e| to_pyerr(py, &e))?;
        self.remember(&entries);
        let what: Vec<String> = adds.iter().map(ToString::to_string).collect();
        self.builder.append(layer, format!("zeroimage {}: ADD {}", zeroimage::VERSION, what.join(" ")));
        Ok(())
    }

    /// Add the program (a Linux ELF executable, checked as `build_image` checks it) in a layer
    /// of its own at `path_in_image` (default `/<file name>`), and make it the entrypoint
    /// (which also clears the base's Cmd). A dynamically linked program needs its loader in
    /// the image, unless `allow_dynamic=True`.
    #[pyo3(signature = (path, path_in_image = None, *, allow_dynamic = false, progress = None, cancel = None))]
    fn add_program(
        &mut self,
        py: Python<'_>,
        path: PathBuf,
        path_in_image: Option<String>,
        allow_dynamic: bool,
        progress: Option<Py<PyAny>>,
        cancel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        check_callable(py, "progress", progress.as_ref())?;
        let watch = Watch::new(cancel)?;
        if let Some((_, previous)) = &self.program {
            return Err(to_pyerr(
                py,
                &Error::InvalidOption {
                    option: "program",
                    value: path.display().to_string(),
                    reason: format!("the image already has its program at {previous}; one program per image"),
                },
            ));
        }
        let token = CancelToken::new();
        let callbacks = Callbacks::new(&token);
        let options = self.layer_options(&callbacks, progress);
        let (builder, files, base) = (&mut self.builder, &self.files, &self.base);
        let result = run_detached(py, &token, &watch, || -> zeroimage::Result<(Layer, String, String)> {
            let in_image = zeroimage::path_in_image(&path, path_in_image.as_deref())?;
            if files.contains(&in_image) {
                return Err(Error::InvalidOption {
                    option: "path",
                    value: in_image.clone(),
                    reason: "add_files() already put a file there; pick another path_in_image".into(),
                });
            }
            let platform = builder.platform().clone();
            let program = Program::open(&path, Some(&platform))?;
            if let Some(interpreter) = program.interpreter() {
                if !allow_dynamic && !builder.has_file(interpreter, &std::env::temp_dir(), &CancelToken::new())? {
                    return Err(Error::DynamicProgram {
                        path: path.clone(),
                        interpreter: interpreter.to_string(),
                        base: base.clone(),
                    });
                }
            }
            let layer = Layer::from_entries(vec![program.entry(&in_image)], &options)?;
            Ok((layer, program.file_name(), in_image))
        })?;
        callbacks.reraise()?;
        let (layer, name, in_image) = result.map_err(|e| to_pyerr(py, &e))?;
        self.builder.append(layer, format!("zeroimage {}: COPY {name} {in_image}", zeroimage::VERSION));
        self.builder.set_entrypoint([in_image.clone()]);
        self.files.insert(in_image.clone());
        self.program = Some((path, in_image));
        Ok(())
    }

    /// Set the Entrypoint (a list of strings); the base's Cmd is cleared, as a Dockerfile's
    /// ENTRYPOINT does.
    fn set_entrypoint(&mut self, entrypoint: Vec<String>) {
        self.builder.set_entrypoint(entrypoint);
    }

    /// Set Cmd: the arguments after the entrypoint (an empty list removes it).
    fn set_cmd(&mut self, cmd: Vec<String>) {
        self.builder.set_cmd(cmd);
    }

    /// Set an environment variable (merged over the base's by name).
    fn set_env(&mut self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        self.builder.set_env(key, value).map(drop).map_err(|e| to_pyerr(py, &e))
    }

    /// Set the user to run as: a name, `uid` or `uid:gid`.
    fn set_user(&mut self, py: Python<'_>, user: &str) -> PyResult<()> {
        self.builder.set_user(user).map(drop).map_err(|e| to_pyerr(py, &e))
    }

    /// Set the working directory (absolute).
    fn set_workdir(&mut self, py: Python<'_>, workdir: &str) -> PyResult<()> {
        self.builder.set_workdir(workdir).map(drop).map_err(|e| to_pyerr(py, &e))
    }

    /// Set a config label.
    fn set_label(&mut self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        self.builder.set_label(key, value).map(drop).map_err(|e| to_pyerr(py, &e))
    }

    /// Set a manifest annotation.
    fn set_annotation(&mut self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        self.builder.set_annotation(key, value).map(drop).map_err(|e| to_pyerr(py, &e))
    }

    /// Write the image to `output` (any output the CLI's `--output` takes; an `os.PathLike`
    /// is an archive path) and push it to `push` (one reference or a list), named `tag` (one
    /// or a list) in archives and layouts. Default output: `<program file name>.tar`, none when
    /// pushing. The image can be written again, elsewhere.
    #[pyo3(signature = (output = None, *, push = None, tag = None, log = None, progress = None, cancel = None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        output: Option<&Bound<'_, PyAny>>,
        push: Option<&Bound<'_, PyAny>>,
        tag: Option<&Bound<'_, PyAny>>,
        log: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
        cancel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<BuildResult> {
        check_callable(py, "log", log.as_ref())?;
        check_callable(py, "progress", progress.as_ref())?;
        let watch = Watch::new(cancel)?;
        let options = PyDict::new(py);
        for (key, value) in [("output", output), ("push", push), ("tag", tag)] {
            if let Some(value) = value {
                options.set_item(key, value)?;
            }
        }
        let program = self.program.as_ref().map_or(Value::Null, |(p, _)| Value::from(p.to_string_lossy()));
        let request = settings(py, Some(&options), &["output", "push", "tag"], program, Hooks::default())?;
        let token = CancelToken::new();
        let callbacks = Callbacks::new(&token);
        let mut registry = self.write_options.registry.clone();
        if let Some(log) = log {
            registry.log = Some(callbacks.logger(log));
        }
        let write = WriteOptions {
            tags: request.options.tags.clone(),
            cancel: token.clone(),
            progress: progress.map(|f| callbacks.progress(f)),
            registry,
            ..self.write_options.clone()
        };
        let sinks = request.sinks;
        let builder = &self.builder;
        let result = run_detached(py, &token, &watch, || -> zeroimage::Result<zeroimage::BuildResult> {
            let image = builder.build()?;
            let written = image.write(&sinks, &write)?;
            Ok(zeroimage::BuildResult::new(
                std::slice::from_ref(&image),
                None,
                written,
                &sinks,
                &write.tags,
                Vec::new(),
            ))
        })?;
        callbacks.reraise()?;
        Ok(BuildResult::new(result.map_err(|e| to_pyerr(py, &e))?))
    }

    fn __repr__(&self) -> String {
        let program = self.program.as_ref().map_or_else(|| "None".to_string(), |(_, p)| format!("{p:?}"));
        format!("Image(platform={:?}, layers={}, program={program})", self.platform(), self.builder.layers().len())
    }
}

impl Image {
    /// Note the files a layer put in the image.
    fn remember(&mut self, entries: &[Entry]) {
        let files = entries.iter().filter(|e| !matches!(e.kind, EntryKind::Dir));
        self.files.extend(files.map(|e| e.path.trim_end_matches('/').to_string()));
    }

    /// How this image's layers are written, with this call's cancel token and progress.
    fn layer_options(&self, callbacks: &Callbacks, progress: Option<Py<PyAny>>) -> LayerOptions {
        LayerOptions {
            cancel: callbacks.cancel.clone(),
            progress: progress.map(|f| callbacks.progress(f)),
            ..self.layer_options.clone()
        }
    }
}

/// Python callbacks called from the thread doing the work. The first exception one raises
/// cancels the work and is re-raised by [`Callbacks::reraise`] once it has stopped.
struct Callbacks {
    cancel: CancelToken,
    error: Arc<Mutex<Option<PyErr>>>,
}

impl Callbacks {
    fn new(cancel: &CancelToken) -> Callbacks {
        Callbacks { cancel: cancel.clone(), error: Arc::default() }
    }

    /// Call `f(arg)` with the interpreter attached only for the call itself.
    fn caller<A: for<'py> IntoPyObject<'py> + Send>(&self, f: Py<PyAny>) -> impl Fn(A) + Send + Sync + 'static {
        let (cancel, failed) = (self.cancel.clone(), Arc::clone(&self.error));
        move |arg: A| {
            if cancel.is_cancelled() {
                return;
            }
            Python::attach(|py| {
                if let Err(err) = f.bind(py).call1((arg,)) {
                    failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(err);
                    cancel.cancel();
                }
            });
        }
    }

    fn progress(&self, f: Py<PyAny>) -> zeroimage::ProgressFn {
        let call = self.caller::<Progress>(f);
        Arc::new(move |p: &zeroimage::Progress| {
            call(Progress { stage: p.stage.as_str(), current: p.current, total: p.total })
        })
    }

    fn logger(&self, f: Py<PyAny>) -> Logger {
        let call = self.caller::<String>(f);
        Logger::new(move |line| call(line.to_string()))
    }

    /// The exception a callback raised, if one did.
    fn reraise(&self) -> PyResult<()> {
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// The caller's way to cancel: a `CancelToken`, or anything with `is_set()` (a
/// `threading.Event`), looked at while the work runs.
enum Watch<'py> {
    None,
    Token(CancelToken),
    Event(Bound<'py, PyAny>),
}

impl<'py> Watch<'py> {
    fn new(cancel: Option<&Bound<'py, PyAny>>) -> PyResult<Watch<'py>> {
        let Some(cancel) = cancel else { return Ok(Watch::None) };
        if cancel.is_none() {
            return Ok(Watch::None);
        }
        if let Ok(token) = cancel.cast::<CancelToken_>() {
            return Ok(Watch::Token(token.get().token.clone()));
        }
        match cancel.getattr("is_set") {
            Ok(is_set) if is_set.is_callable() => Ok(Watch::Event(cancel.clone())),
            _ => Err(PyTypeError::new_err("cancel must be a zeroimage.CancelToken or a threading.Event")),
        }
    }

    /// Whether the caller asked to cancel.
    fn is_set(&self) -> PyResult<bool> {
        match self {
            Watch::None => Ok(false),
            Watch::Token(token) => Ok(token.is_cancelled()),
            Watch::Event(event) => event.call_method0("is_set")?.is_truthy(),
        }
    }
}

/// `progress`, `log`: a callable or `None`.
fn check_callable(py: Python<'_>, option: &str, f: Option<&Py<PyAny>>) -> PyResult<()> {
    match f {
        Some(f) if !f.bind(py).is_callable() => Err(PyTypeError::new_err(format!("{option} must be callable"))),
        _ => Ok(()),
    }
}

/// Run the zeroimage CLI with `args` (without the program name); return its exit code.
#[pyfunction]
fn run_cli(py: Python<'_>, args: Vec<OsString>) -> PyResult<i32> {
    let cancel = CancelToken::new();
    run_detached(py, &cancel, &Watch::None, || zeroimage::cli::run_with(args, &cancel))
}

/// Run `work` on a worker thread with the GIL released; the calling thread waits detached
/// too, waking every [`SIGNAL_POLL`] to run Python's signal handlers and to look at `watch`.
/// When a handler raises (Ctrl-C → `KeyboardInterrupt`), the work is cancelled through
/// `cancel`, awaited, and the exception is returned; when `watch` is set, the work is
/// cancelled and awaited, and returns its own (cancelled) result.
fn run_detached<T: Send>(
    py: Python<'_>,
    cancel: &CancelToken,
    watch: &Watch<'_>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    if watch.is_set()? {
        cancel.cancel();
    }
    thread::scope(|scope| {
        let waiter = thread::current();
        let worker = scope.spawn(move || {
            let result = work();
            waiter.unpark();
            result
        });
        let mut interrupted = None;
        while !worker.is_finished() {
            py.detach(|| {
                if !worker.is_finished() {
                    thread::park_timeout(SIGNAL_POLL);
                }
            });
            if interrupted.is_none() && !cancel.is_cancelled() {
                if let Err(err) = py.check_signals() {
                    cancel.cancel();
                    interrupted = Some(err);
                }
                match watch.is_set() {
                    Ok(true) => cancel.cancel(),
                    Ok(false) => {}
                    Err(err) => {
                        cancel.cancel();
                        interrupted = Some(err);
                    }
                }
            }
        }
        let result = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match interrupted {
            Some(err) => Err(err),
            None => Ok(result),
        }
    })
}

/// The exception for a core error: the class of its kind (`zeroimage._errors`), carrying
/// `Error::report()` (the message the CLI prints after `error: `) with options and hints
/// spelled the Python way; an I/O error also carries `errno` and `filename` where known.
fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    make_error(py, err, false)
}

/// The exception for an unknown keyword or a value of the wrong shape: `InvalidOptionError`,
/// also a `TypeError`.
fn option_error(py: Python<'_>, err: &Error) -> PyErr {
    make_error(py, err, true)
}

fn make_error(py: Python<'_>, err: &Error, option: bool) -> PyErr {
    let program = match err {
        Error::ProgramNotFound { path } => Some(path.clone().into_os_string()),
        _ => None,
    };
    let (errno, filename) = io_details(err);
    let make = || -> PyResult<PyErr> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("program", program)?;
        kwargs.set_item("errno", errno)?;
        kwargs.set_item("filename", filename.map(PathBuf::into_os_string))?;
        kwargs.set_item("option", option)?;
        let exc = py
            .import("zeroimage._errors")?
            .getattr("_from_core")?
            .call((err.kind().as_str(), Frontend::Python.spell(&err.report())), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    make().unwrap_or_else(|e| e)
}

/// The OS error number and the file of an I/O error (possibly under a base that could not be
/// read).
fn io_details(err: &Error) -> (Option<i32>, Option<PathBuf>) {
    match err {
        Error::Io { path, source, .. } => {
            let errno = source.raw_os_error().or(match source.kind() {
                std::io::ErrorKind::NotFound => Some(2),
                std::io::ErrorKind::PermissionDenied => Some(13),
                std::io::ErrorKind::AlreadyExists => Some(17),
                _ => None,
            });
            (errno, Some(path.clone()))
        }
        Error::ProgramChanged { path, .. } => (None, Some(path.clone())),
        Error::BaseUnavailable { source, .. } => io_details(source),
        _ => (None, None),
    }
}

/// A Python value as JSON for the option schema: `None`, `bool`, `int`, `float`, `str`,
/// `os.PathLike` (its string), mappings with `str` keys, lists and tuples. Anything else is
/// an `InvalidOptionError` naming `key`.
fn to_json(py: Python<'_>, value: &Bound<'_, PyAny>, key: &str, depth: usize) -> PyResult<Value> {
    let bad = |reason: &str| {
        option_error(
            py,
            &Error::InvalidOption { option: "options", value: key.to_string(), reason: reason.to_string() },
        )
    };
    if depth > MAX_DEPTH {
        return Err(bad("the value nests too deeply"));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.cast::<PyInt>().is_ok() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = value.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(bad(&format!("{} is too large a number", value.str()?)));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| bad(&format!("expected a finite number, not {}", f.value())));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if value.hasattr("__fspath__")? {
        return path_json(value, key);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        return mapping_json(py, dict.items().as_any(), key, depth);
    }
    if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        let items = value.try_iter()?.map(|item| to_json(py, &item?, key, depth + 1)).collect::<PyResult<Vec<_>>>()?;
        return Ok(Value::Array(items));
    }
    if value.hasattr("items")? && value.hasattr("__getitem__")? {
        return mapping_json(py, &value.call_method0("items")?, key, depth);
    }
    Err(bad(&format!("a {} cannot be an option value", value.get_type().name()?)))
}

/// The `(key, value)` pairs of a mapping's `items()` as a JSON object, in order.
fn mapping_json(py: Python<'_>, items: &Bound<'_, PyAny>, key: &str, depth: usize) -> PyResult<Value> {
    let mut map = Map::new();
    for item in items.try_iter()? {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let Ok(k) = k.cast::<PyString>() else {
            let err = Error::InvalidOption {
                option: "options",
                value: key.to_string(),
                reason: format!("its keys must be str, not {}", k.get_type().name()?),
            };
            return Err(option_error(py, &err));
        };
        map.insert(k.to_str()?.to_string(), to_json(py, &v, key, depth + 1)?);
    }
    Ok(Value::Object(map))
}

/// A `str` or `os.PathLike` as a JSON string.
fn path_json(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Value> {
    let path: PathBuf = value.extract().map_err(|_| {
        PyTypeError::new_err(format!("{key} must be a str or an os.PathLike, not {}", type_name(value)))
    })?;
    match path.to_str() {
        Some(s) => Ok(Value::from(s)),
        None => Err(PyTypeError::new_err(format!("{key}: {} is not valid UTF-8", path.display()))),
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// The keyword arguments as a JSON object; `output` given as an `os.PathLike` is an archive
/// path (`oci-archive:PATH`), whatever its name looks like.
fn options_json(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Map<String, Value>> {
    let mut json = Map::new();
    let Some(options) = options else { return Ok(json) };
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        let value = if key == "output" && value.hasattr("__fspath__")? {
            Value::from(output_string(&value)?)
        } else {
            to_json(py, &value, &key, 0)?
        };
        json.insert(key, value);
    }
    Ok(json)
}

/// `output`: a string is a transport string as the CLI takes it; an `os.PathLike` is an archive path.
fn output_string(output: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = output.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    let path: PathBuf = output.extract().map_err(|_| {
        PyTypeError::new_err("output must be a str (an output string) or an os.PathLike (an archive path)")
    })?;
    Ok(format!("oci-archive:{}", path.display()))
}

/// `tag`: one string or a sequence of strings.
fn strings(option: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_string()]);
    }
    value.extract().map_err(|_| PyTypeError::new_err(format!("{option} must be a str or a sequence of str")))
}

/// A `Mapping[str, str]` as (key, value) pairs, in the mapping's order.
fn pairs(option: &str, mapping: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let bad = || PyTypeError::new_err(format!("{option} must be a mapping of str to str"));
    let items = mapping.call_method0("items").map_err(|_| bad())?;
    items.try_iter().map_err(|_| bad())?.map(|item| item?.extract::<(String, String)>().map_err(|_| bad())).collect()
}

#[pymodule(gil_used = false)]
fn _zeroimage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_image, m)?)?;
    m.add_function(wrap_pyfunction!(write_base, m)?)?;
    m.add_function(wrap_pyfunction!(login, m)?)?;
    m.add_function(wrap_pyfunction!(logout, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_class::<BuildResult>()?;
    m.add_class::<Progress>()?;
    m.add_class::<CancelToken_>()?;
    m.add_class::<Image>()?;
    m.add("__version__", zeroimage::VERSION)?;
    Ok(())
}
