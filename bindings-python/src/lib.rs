//! `zeroimage._zeroimage`: the native module behind the `zeroimage` Python package.
//!
//! Thin by design: each function converts its arguments, calls one core function with the GIL
//! released, and maps the core's [`Error`] to the exception class of its [`ErrorKind`]
//! (defined in Python, in `zeroimage/_errors.py`). Parsing of bases, outputs, platforms and
//! references happens in the core, exactly as for the CLI.
//!
//! [`ErrorKind`]: zeroimage::ErrorKind

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use zeroimage::registry::Logger;
use zeroimage::{
    Base, BaseOptions, BuildOptions, CancelToken, Compression, Credentials, Error, Format, Platform, RegistryOptions,
    Sink,
};

/// How often a thread waiting for a build wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

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
    /// The first (today: the only) output, as a transport string (`oci-archive:hello.tar`).
    output: String,
    /// Every output written, as transport strings.
    outputs: Vec<String>,
    /// The manifest digest each output holds, in the order of `outputs` (archives and
    /// layouts are OCI; a push keeps the base's format, so its digest can differ).
    digests: Vec<String>,
    /// The names given to the image (`docker.io/library/hello:latest`).
    tags: Vec<String>,
    /// Each `push` target as `REPOSITORY@DIGEST` (`localhost:5000/hello@sha256:…`).
    pushed: Vec<String>,
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
            digests: r.digests,
            tags: r.tags,
        }
    }
}

/// A progress event: `current` of `total` bytes done in `stage` (`"layer"` or `"write"`).
#[pyclass(frozen, get_all, module = "zeroimage._zeroimage")]
#[derive(Debug)]
struct Progress {
    /// `"layer"` (reading and compressing the program) or `"write"` (writing an output).
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

/// Build an image of the program `entrypoint` and write it to `output`; return a `BuildResult`.
///
/// The image is `FROM base`, `COPY entrypoint /<name>`, `ENTRYPOINT ["/<name>"]`. Options are
/// keyword-only and named like the CLI's flags (`base` is `--from`):
///
/// - base: any base the CLI's `--from` takes (default `"scratch"`).
/// - platform: `os/arch[/variant]`; default: the program's architecture.
/// - output: any output the CLI's `--output` takes (`PATH`, `oci-archive:PATH`, `oci:DIR[:TAG]`,
///   `docker-daemon:NAME[:TAG]`, `docker://REF`); an `os.PathLike` is an archive path.
///   Default: `<program name>.tar` in the current directory, none when `push` is given.
/// - push: one registry reference (`REF` or `docker://REF`) or a list of them: the blobs go up
///   once, then every tag. Combinable with `output`.
/// - insecure, ca_cert (one PEM file or a list), creds (`"USER:PASSWORD"`), timeout (seconds a
///   registry request may make no progress; default 60): how registries are reached, for
///   registry bases and `push`. Without `creds`, stored credentials are used (docker/podman login).
/// - log: called with each line the CLI's `--verbose` prints (credential sources, uploads,
///   mounts, retries); never a secret.
/// - tag: one name or a list of names for the image.
/// - env, labels, annotations: mappings of str to str. args: the image's Cmd.
/// - user, workdir, path (of the program in the image), allow_dynamic, format (`"oci"` or
///   `"docker"`), source_date_epoch (default `$SOURCE_DATE_EPOCH`, else 0).
/// - profile (`"lambda"`): check the image against AWS Lambda's rules before anything is
///   written; every violation is listed in one `InvalidInputError`.
/// - compression (`"gzip"`, `"zstd"` or `"none"`), compression_level (gzip 0-9, default 6;
///   zstd 1-19, default 3), jobs (threads to compress with; default: the number of cores).
/// - progress: called with a `Progress` as the build advances; if it (or `log`) raises, the
///   build stops, nothing is written, and the exception propagates.
///
/// The GIL is released for the whole build. Errors raise a `ZeroImageError` subclass whose
/// message is the one the CLI prints; Ctrl-C cancels the build and raises `KeyboardInterrupt`.
#[pyfunction]
#[pyo3(signature = (
    entrypoint, *, base = "scratch", platform = None, output = None, push = None, tag = None,
    env = None, args = None, user = None, workdir = None, path = None, labels = None,
    annotations = None, allow_dynamic = false, format = None, profile = None, compression = "gzip",
    compression_level = None, jobs = None,
    source_date_epoch = None, insecure = false, ca_cert = None, creds = None, timeout = None,
    log = None, progress = None,
))]
#[allow(clippy::too_many_arguments)]
fn build_image(
    py: Python<'_>,
    entrypoint: PathBuf,
    base: &str,
    platform: Option<&str>,
    output: Option<&Bound<'_, PyAny>>,
    push: Option<&Bound<'_, PyAny>>,
    tag: Option<&Bound<'_, PyAny>>,
    env: Option<&Bound<'_, PyAny>>,
    args: Option<Vec<String>>,
    user: Option<String>,
    workdir: Option<String>,
    path: Option<String>,
    labels: Option<&Bound<'_, PyAny>>,
    annotations: Option<&Bound<'_, PyAny>>,
    allow_dynamic: bool,
    format: Option<&str>,
    profile: Option<&str>,
    compression: &str,
    compression_level: Option<u32>,
    jobs: Option<u32>,
    source_date_epoch: Option<u64>,
    insecure: bool,
    ca_cert: Option<&Bound<'_, PyAny>>,
    creds: Option<&str>,
    timeout: Option<f64>,
    log: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<BuildResult> {
    // Python-side type checks first (TypeError), then the core's parsers, in the CLI's order.
    let output = output.map(output_string).transpose()?;
    let push = push.map(|p| strings("push", p)).transpose()?.unwrap_or_default();
    let tags = tag.map(|t| strings("tag", t)).transpose()?.unwrap_or_default();
    let env = env.map(|m| pairs("env", m)).transpose()?.unwrap_or_default();
    let labels = labels.map(|m| pairs("labels", m)).transpose()?.unwrap_or_default();
    let annotations = annotations.map(|m| pairs("annotations", m)).transpose()?.unwrap_or_default();
    let ca_certs = ca_cert.map(paths).transpose()?.unwrap_or_default();
    check_callable(py, "log", log.as_ref())?;
    check_callable(py, "progress", progress.as_ref())?;

    let core = |py: Python<'_>, e: Error| to_pyerr(py, &e);
    let base: Base = base.parse().map_err(|e| core(py, e))?;
    let credentials = creds.map(str::parse::<Credentials>).transpose().map_err(|e| core(py, e))?;
    let compression = Compression::from_options(compression, compression_level, jobs).map_err(|e| core(py, e))?;
    let timeout = timeout.map(seconds).transpose().map_err(|e| core(py, e))?;
    let platform = platform.map(str::parse::<Platform>).transpose().map_err(|e| core(py, e))?;
    // The CLI's sinks: the output (default `<program>.tar` unless pushing), then each push.
    let sinks = Sink::for_build(&entrypoint, output.as_deref(), &push).map_err(|e| core(py, e))?;
    let cancel = CancelToken::new();
    let callbacks = Callbacks::new(&cancel);
    let log = log.map(|f| callbacks.logger(f));
    if let (Some(log), Some(creds)) = (&log, &credentials) {
        log.log(&format!("credentials: user {} from creds", creds.username().unwrap_or("?")));
    }
    let mut options = BuildOptions {
        path,
        args: args.unwrap_or_default(),
        env,
        workdir,
        user,
        labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
        annotations: annotations.into_iter().collect::<BTreeMap<_, _>>(),
        allow_dynamic,
        source_date_epoch,
        format: format.map(str::parse::<Format>).transpose().map_err(|e| core(py, e))?,
        profile: profile.map(str::parse::<zeroimage::Profile>).transpose().map_err(|e| core(py, e))?,
        compression,
        cancel: cancel.clone(),
        registry: RegistryOptions { insecure, ca_certs, credentials, timeout, log, ..RegistryOptions::default() },
        ..BuildOptions::default()
    };
    for tag in &tags {
        options.tags.push(tag.parse().map_err(|e| core(py, e))?);
    }
    options.progress = progress.map(|f| callbacks.progress(f));

    let result =
        run_detached(py, &cancel, || zeroimage::build_image(&base, &entrypoint, platform.as_ref(), &sinks, &options))?;
    callbacks.reraise()?;
    result.map(BuildResult::new).map_err(|e| core(py, e))
}

/// Write a base image on its own, as `zeroimage base` does; return a `BuildResult`.
///
/// - base: the base to write (default `"builtin:static"`); any base the CLI's `--from` takes.
/// - output: as for `build_image`; default `<builtin name>.tar` for a built-in base (other
///   bases need one).
/// - tag: one name or a list (default `zeroimage-builtin-<name>:<version>` for a built-in).
/// - platform: the platform the config declares (default `linux/<this machine's architecture>`).
/// - format (`"oci"` or `"docker"`), annotations.
///
/// The GIL is released while the image is written; errors raise `ZeroImageError` subclasses.
#[pyfunction]
#[pyo3(signature = (
    base = "builtin:static", *, output = None, tag = None, platform = None, format = None, annotations = None,
))]
fn write_base(
    py: Python<'_>,
    base: &str,
    output: Option<&Bound<'_, PyAny>>,
    tag: Option<&Bound<'_, PyAny>>,
    platform: Option<&str>,
    format: Option<&str>,
    annotations: Option<&Bound<'_, PyAny>>,
) -> PyResult<BuildResult> {
    let output = output.map(output_string).transpose()?;
    let tags = tag.map(|t| strings("tag", t)).transpose()?.unwrap_or_default();
    let annotations = annotations.map(|m| pairs("annotations", m)).transpose()?.unwrap_or_default();

    let core = |py: Python<'_>, e: Error| to_pyerr(py, &e);
    let base: Base = base.parse().map_err(|e| core(py, e))?;
    let platform = platform.map(str::parse::<Platform>).transpose().map_err(|e| core(py, e))?;
    let sink = Sink::for_base(&base, output.as_deref()).map_err(|e| core(py, e))?;
    let cancel = CancelToken::new();
    let mut options = BaseOptions {
        format: format.map(str::parse::<Format>).transpose().map_err(|e| core(py, e))?,
        annotations: annotations.into_iter().collect(),
        cancel: cancel.clone(),
        ..BaseOptions::default()
    };
    for tag in &tags {
        options.tags.push(tag.parse().map_err(|e| core(py, e))?);
    }
    let result = run_detached(py, &cancel, || {
        zeroimage::write_base(&base, platform.as_ref(), std::slice::from_ref(&sink), &options)
    })?;
    result.map(BuildResult::new).map_err(|e| core(py, e))
}

/// Log in to `registry`: check the credentials against it, then store them as `docker login`
/// does (the configured credential helper, else `auths` in `$DOCKER_CONFIG/config.json`).
/// Return where they were stored. The GIL is released meanwhile.
#[pyfunction]
#[pyo3(signature = (registry, username, password, *, insecure = false, ca_cert = None, log = None))]
fn login(
    py: Python<'_>,
    registry: &str,
    username: &str,
    password: &str,
    insecure: bool,
    ca_cert: Option<&Bound<'_, PyAny>>,
    log: Option<Py<PyAny>>,
) -> PyResult<String> {
    let ca_certs = ca_cert.map(paths).transpose()?.unwrap_or_default();
    check_callable(py, "log", log.as_ref())?;
    let cancel = CancelToken::new();
    let callbacks = Callbacks::new(&cancel);
    let options = RegistryOptions { insecure, ca_certs, log: log.map(|f| callbacks.logger(f)), ..Default::default() };
    let result = py.detach(|| zeroimage::registry::login(registry, username, password, &options));
    callbacks.reraise()?;
    result.map(|source| source.to_string()).map_err(|e| to_pyerr(py, &e))
}

/// Log out of `registry`: erase its stored credentials. Return whether there were any.
#[pyfunction]
fn logout(py: Python<'_>, registry: &str) -> PyResult<bool> {
    py.detach(|| zeroimage::registry::logout(registry)).map_err(|e| to_pyerr(py, &e))
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

/// `progress`, `log`: a callable or `None`.
fn check_callable(py: Python<'_>, option: &str, f: Option<&Py<PyAny>>) -> PyResult<()> {
    match f {
        Some(f) if !f.bind(py).is_callable() => Err(PyTypeError::new_err(format!("{option} must be callable"))),
        _ => Ok(()),
    }
}

/// `timeout`: positive, finite seconds.
fn seconds(timeout: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(timeout).ok().filter(|d| !d.is_zero()).ok_or_else(|| Error::InvalidOption {
        option: "timeout",
        value: timeout.to_string(),
        reason: "expected a positive number of seconds".into(),
    })
}

/// Run the zeroimage CLI with `args` (without the program name); return its exit code.
#[pyfunction]
fn run_cli(py: Python<'_>, args: Vec<OsString>) -> PyResult<i32> {
    let cancel = CancelToken::new();
    run_detached(py, &cancel, || zeroimage::cli::run_with(args, &cancel))
}

/// Run `work` on a worker thread with the GIL released; the calling thread waits detached
/// too, waking every [`SIGNAL_POLL`] to run Python's signal handlers. When one raises (Ctrl-C
/// → `KeyboardInterrupt`), the work is cancelled through `cancel`, awaited, and the
/// exception is returned.
fn run_detached<T: Send>(py: Python<'_>, cancel: &CancelToken, work: impl FnOnce() -> T + Send) -> PyResult<T> {
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
            if interrupted.is_none() {
                if let Err(err) = py.check_signals() {
                    cancel.cancel();
                    interrupted = Some(err);
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
/// `Error::report()`, the message the CLI prints after `error: `.
fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    let program = match err {
        Error::ProgramNotFound { path } => Some(path.clone().into_os_string()),
        _ => None,
    };
    let make = || -> PyResult<PyErr> {
        let exc = py.import("zeroimage._errors")?.getattr("_from_core")?.call1((
            err.kind().as_str(),
            err.report(),
            program,
        ))?;
        Ok(PyErr::from_value(exc))
    };
    make().unwrap_or_else(|e| e)
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

/// `tag`, `push`: one string or a sequence of strings.
fn strings(option: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_string()]);
    }
    value.extract().map_err(|_| PyTypeError::new_err(format!("{option} must be a str or a sequence of str")))
}

/// `ca_cert`: one path (`str` or `os.PathLike`) or a sequence of paths.
fn paths(value: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(vec![path]);
    }
    value
        .extract()
        .map_err(|_| PyTypeError::new_err("ca_cert must be a path (str or os.PathLike) or a sequence of paths"))
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
    m.add("__version__", zeroimage::VERSION)?;
    Ok(())
}
