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
use zeroimage::{Base, BuildOptions, CancelToken, Compression, Error, Format, Platform, Sink};

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
    /// The names given to the image (`docker.io/library/hello:latest`).
    tags: Vec<String>,
}

#[pymethods]
impl BuildResult {
    fn __repr__(&self) -> String {
        format!(
            "BuildResult(digest={:?}, config_digest={:?}, size={}, platform={:?}, output={:?}, tags={:?})",
            self.digest, self.config_digest, self.size, self.platform, self.output, self.tags
        )
    }
}

impl From<zeroimage::BuildResult> for BuildResult {
    fn from(r: zeroimage::BuildResult) -> Self {
        BuildResult {
            digest: r.digest,
            config_digest: r.config_digest,
            size: r.size,
            platform: r.platform.to_string(),
            output: r.outputs.first().cloned().unwrap_or_default(),
            outputs: r.outputs,
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
/// - output: any output the CLI's `--output` takes (`PATH`, `oci-archive:PATH`, `oci:DIR[:TAG]`);
///   an `os.PathLike` is an archive path. Default: `<program name>.tar` in the current directory.
/// - tag: one name or a list of names for the image.
/// - env, labels, annotations: mappings of str to str. args: the image's Cmd.
/// - user, workdir, path (of the program in the image), allow_dynamic, format (`"oci"` or
///   `"docker"`), compression_level (0-9), source_date_epoch (default `$SOURCE_DATE_EPOCH`, else 0).
/// - progress: called with a `Progress` as the build advances; if it raises, the build stops,
///   nothing is written, and the exception propagates.
///
/// The GIL is released for the whole build. Errors raise a `ZeroImageError` subclass whose
/// message is the one the CLI prints; Ctrl-C cancels the build and raises `KeyboardInterrupt`.
#[pyfunction]
#[pyo3(signature = (
    entrypoint, *, base = "scratch", platform = None, output = None, tag = None, env = None,
    args = None, user = None, workdir = None, path = None, labels = None, annotations = None,
    allow_dynamic = false, format = None, compression_level = 6, source_date_epoch = None,
    progress = None,
))]
#[allow(clippy::too_many_arguments)]
fn build_image(
    py: Python<'_>,
    entrypoint: PathBuf,
    base: &str,
    platform: Option<&str>,
    output: Option<&Bound<'_, PyAny>>,
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
    compression_level: u32,
    source_date_epoch: Option<u64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<BuildResult> {
    // Python-side type checks first (TypeError), then the core's parsers, in the CLI's order.
    let output = output.map(output_string).transpose()?;
    let tags = tag.map(tag_strings).transpose()?.unwrap_or_default();
    let env = env.map(|m| pairs("env", m)).transpose()?.unwrap_or_default();
    let labels = labels.map(|m| pairs("labels", m)).transpose()?.unwrap_or_default();
    let annotations = annotations.map(|m| pairs("annotations", m)).transpose()?.unwrap_or_default();

    let core = |py: Python<'_>, e: Error| to_pyerr(py, &e);
    let base: Base = base.parse().map_err(|e| core(py, e))?;
    let platform = platform.map(str::parse::<Platform>).transpose().map_err(|e| core(py, e))?;
    let sink = match &output {
        Some(output) => output.parse::<Sink>().map_err(|e| core(py, e))?,
        None => Sink::default_for(&entrypoint),
    };
    let cancel = CancelToken::new();
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
        compression: Compression::gzip(compression_level),
        cancel: cancel.clone(),
        ..BuildOptions::default()
    };
    for tag in &tags {
        options.tags.push(tag.parse().map_err(|e| core(py, e))?);
    }
    // An exception raised by the progress callback stops the build and is re-raised.
    let callback_error: Arc<Mutex<Option<PyErr>>> = Arc::default();
    if let Some(callback) = progress {
        let failed = Arc::clone(&callback_error);
        let cancel = cancel.clone();
        options.progress = Some(Arc::new(move |p: &zeroimage::Progress| {
            if cancel.is_cancelled() {
                return;
            }
            // Re-attach to the interpreter only for the call itself.
            Python::attach(|py| {
                let event = Progress { stage: p.stage.as_str(), current: p.current, total: p.total };
                if let Err(err) = callback.bind(py).call1((event,)) {
                    *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                    cancel.cancel();
                }
            });
        }));
    }

    let result = run_detached(py, &cancel, || {
        zeroimage::build_image(&base, &entrypoint, platform.as_ref(), std::slice::from_ref(&sink), &options)
    })?;
    if let Some(err) = callback_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(err);
    }
    result.map(BuildResult::from).map_err(|e| core(py, e))
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

/// `tag`: one name or a sequence of names.
fn tag_strings(tag: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = tag.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_string()]);
    }
    tag.extract().map_err(|_| PyTypeError::new_err("tag must be a str or a sequence of str"))
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
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_class::<BuildResult>()?;
    m.add_class::<Progress>()?;
    m.add("__version__", zeroimage::VERSION)?;
    Ok(())
}
