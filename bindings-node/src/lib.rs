//! The npm package `zeroimage`: a thin napi-rs binding of the core.
//!
//! Each exported call converts its arguments on the JavaScript thread, then runs one core
//! function inside an [`AsyncTask`] on the libuv thread pool. All parsing of strings (base,
//! platform, output, tags, `KEY=VALUE`s) happens in the core, inside `compute`, so bad input
//! rejects the returned Promise instead of throwing. Rejections are `Error`s whose `code` is
//! the core's [`zeroimage::ErrorKind`] string and whose `message` is [`zeroimage::Error::report`].

use indexmap::IndexMap;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::UnknownRef;
use napi_derive::napi;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use zeroimage::{Base, BuildOptions, CancelToken, Compression, ErrorKind, Format, Platform, Sink};

/// The version of zeroimage (the Rust workspace version, equal to the npm package's).
#[napi]
pub const VERSION: &str = zeroimage::VERSION;

/// What a build is doing: `current` of `total` bytes done in `stage`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ProgressEvent {
    /// `'layer'` while the program is archived and compressed into its layer, `'write'` while
    /// the image is written to an output.
    #[napi(ts_type = "'layer' | 'write'")]
    pub stage: String,
    /// Bytes done so far in this stage.
    pub current: i64,
    /// Bytes this stage has to do, when known.
    pub total: Option<i64>,
}

/// `onProgress`: called on the JavaScript thread (queued from the build thread); it never blocks
/// the build and does not keep the process alive by itself.
type ProgressCallback = ThreadsafeFunction<ProgressEvent, (), ProgressEvent, Status, false, true>;

/// Options of {@link buildImage}. The names are the CLI's flags in camelCase.
#[napi(object, object_to_js = false)]
pub struct BuildImageOptions<'env> {
    /// The program to package: a Linux ELF executable (static, for a scratch base).
    pub entrypoint: String,
    /// The base image (`--from`), as the CLI spells it; default `'scratch'`.
    pub base: Option<String>,
    /// Target platform `os/arch[/variant]`, e.g. `'linux/arm64'`; default: the program's
    /// architecture.
    pub platform: Option<String>,
    /// Where to write the image: `PATH` or `oci-archive:PATH` (an OCI archive that `docker load`
    /// also reads), or `oci:DIR[:TAG]`; default `<program file name>.tar` in the current directory.
    pub output: Option<String>,
    /// Name(s) for the image (`--tag`), e.g. `'registry.example.com/server:1.0'`.
    pub tag: Option<Either<String, Vec<String>>>,
    /// Environment variables, merged over the base's by name, in this order.
    pub env: Option<IndexMap<String, String>>,
    /// Arguments after the entrypoint: the image's `Cmd`.
    pub args: Option<Vec<String>>,
    /// The user to run as: name, uid or `uid:gid`.
    pub user: Option<String>,
    /// The working directory (absolute).
    pub workdir: Option<String>,
    /// Path of the program inside the image; default `/<program file name>`.
    pub path: Option<String>,
    /// Config labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Manifest annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Build a dynamically linked program even if the base lacks its loader.
    pub allow_dynamic: Option<bool>,
    /// Manifest and config media types: `'oci'` or `'docker'`; default: follow the base.
    #[napi(ts_type = "'oci' | 'docker' | string")]
    pub format: Option<String>,
    /// gzip level of the program's layer, 0–9; default 6.
    pub compression_level: Option<u32>,
    /// Timestamp (seconds since 1970) of the config, history and file times; default
    /// `$SOURCE_DATE_EPOCH`, else 0.
    pub source_date_epoch: Option<i64>,
    /// Called with a {@link ProgressEvent} as the build advances, on the JavaScript thread. An
    /// exception it throws is an uncaught exception (like a throwing event listener's); the
    /// build goes on.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<ProgressCallback>,
    /// Aborts the build: the Promise rejects with `code === 'cancelled'` and no output is left.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// What {@link buildImage} resolves to.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The manifest digest (`sha256:…`): the image's identity.
    pub digest: String,
    /// The config digest: Docker's image ID.
    pub config_digest: String,
    /// Bytes of the image as stored: manifest, config and every layer.
    pub size: i64,
    /// The image's platform, e.g. `'linux/amd64'`.
    pub platform: String,
    /// The first output written, as a transport string (`'oci-archive:server.tar'`).
    pub output: String,
    /// Every output written, as transport strings.
    pub outputs: Vec<String>,
    /// The names given to the image.
    pub tags: Vec<String>,
}

/// A build request, converted on the JavaScript thread and parsed by the core in `compute`.
struct Request {
    entrypoint: PathBuf,
    base: Option<String>,
    platform: Option<String>,
    output: Option<String>,
    tags: Vec<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    path: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    allow_dynamic: bool,
    format: Option<String>,
    compression_level: Option<u32>,
    source_date_epoch: Option<i64>,
    on_progress: Option<ProgressCallback>,
}

/// The abort listener added to a caller's `AbortSignal`, removed again when the build settles.
struct AbortListener {
    signal: UnknownRef,
    listener: UnknownRef,
}

/// The `buildImage` task.
pub struct BuildTask {
    /// The request, or why the options could not be converted (rejected as `invalid_input`);
    /// taken by `compute`.
    request: Option<std::result::Result<Request, String>>,
    cancel: CancelToken,
    abort_listener: Option<AbortListener>,
}

/// What a task's `compute` produces: the core's own error is kept so `resolve` can make a JS
/// `Error` with `code` set to its kind.
type Outcome<T> = std::result::Result<T, (&'static str, String)>;

impl Task for BuildTask {
    type Output = Outcome<zeroimage::BuildResult>;
    type JsValue = BuildResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(match self.request.take() {
            Some(Ok(request)) => build(request, &self.cancel).map_err(|e| (e.kind().as_str(), e.report())),
            Some(Err(message)) => Err((ErrorKind::InvalidInput.as_str(), message)),
            None => Err((ErrorKind::InvalidInput.as_str(), "the build was already run".to_string())),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        let result = output.map_err(|(code, message)| coded_error(&env, code, &message))?;
        Ok(BuildResult {
            output: result.outputs.first().cloned().unwrap_or_default(),
            digest: result.digest,
            config_digest: result.config_digest,
            size: i64::try_from(result.size).unwrap_or(i64::MAX),
            platform: result.platform.to_string(),
            outputs: result.outputs,
            tags: result.tags,
        })
    }

    fn finally(mut self, env: Env) -> Result<()> {
        match self.abort_listener.take() {
            Some(listener) => listener.remove(&env),
            None => Ok(()),
        }
    }
}

/// Build a container image of one program, like `zeroimage build`.
///
/// Runs off the JavaScript thread; every option is checked by the core, so bad input rejects
/// the Promise with an `Error` whose `code` is `'invalid_input'`, `'not_found'`, `'io'`,
/// `'unsupported'`, `'cancelled'`, … and whose `message` is the CLI's error text.
///
/// ```js
/// const { buildImage } = require('zeroimage')
/// const result = await buildImage({ entrypoint: './hello', output: 'hello.tar', tag: 'hello:1.0' })
/// console.log(result.digest)
/// ```
#[napi(ts_args_type = "options: BuildImageOptions", ts_return_type = "Promise<BuildResult>")]
pub fn build_image(env: Env, options: Unknown<'_>) -> AsyncTask<BuildTask> {
    let mut task = BuildTask { request: None, cancel: CancelToken::new(), abort_listener: None };
    // SAFETY: `BuildImageOptions::from_napi_value` is the conversion napi-rs generates for
    // `#[napi(object)]` parameters; it reads every field through checked N-API calls, so a
    // non-object or a field of the wrong type is an `Err`, which we turn into a rejection.
    #[allow(unsafe_code)]
    let options = match options.get_type() {
        Ok(ValueType::Object) => unsafe { options.cast::<BuildImageOptions>() },
        _ => Err(Error::new(Status::ObjectExpected, "expected an object such as { entrypoint: './server' }")),
    };
    let request = options.and_then(|o| accept(&env, o, &mut task));
    task.request = Some(request.map_err(|err| format!("invalid options: {}", err.reason)));
    AsyncTask::new(task)
}

/// Convert the options into a [`Request`] and hook up the abort signal.
fn accept(env: &Env, options: BuildImageOptions<'_>, task: &mut BuildTask) -> Result<Request> {
    if let Some(signal) = &options.signal {
        if signal.get::<bool>("aborted")?.unwrap_or(false) {
            task.cancel.cancel();
        } else {
            task.abort_listener = Some(add_abort_listener(env, signal, &task.cancel)?);
        }
    }
    let tags = match options.tag {
        None => Vec::new(),
        Some(Either::A(tag)) => vec![tag],
        Some(Either::B(tags)) => tags,
    };
    Ok(Request {
        entrypoint: PathBuf::from(options.entrypoint),
        base: options.base,
        platform: options.platform,
        output: options.output,
        tags,
        env: options.env.unwrap_or_default().into_iter().collect(),
        args: options.args.unwrap_or_default(),
        user: options.user,
        workdir: options.workdir,
        path: options.path,
        labels: options.labels.unwrap_or_default(),
        annotations: options.annotations.unwrap_or_default(),
        allow_dynamic: options.allow_dynamic.unwrap_or(false),
        format: options.format,
        compression_level: options.compression_level,
        source_date_epoch: options.source_date_epoch,
        on_progress: options.on_progress,
    })
}

/// `signal.addEventListener('abort', () => cancel.cancel(), { once: true })`.
fn add_abort_listener(env: &Env, signal: &Object<'_>, cancel: &CancelToken) -> Result<AbortListener> {
    let token = cancel.clone();
    let listener = env.create_function_from_closure::<(), (), _>("onabort", move |_| {
        token.cancel();
        Ok(())
    })?;
    let mut once = Object::new(env)?;
    once.set("once", true)?;
    let add: Function<FnArgs<(&str, Unknown<'_>, Object<'_>)>, Unknown<'_>> =
        signal.get_named_property("addEventListener")?;
    add.apply(signal, ("abort", listener.to_unknown(), once).into())?;
    Ok(AbortListener { signal: signal.to_unknown().create_ref()?, listener: listener.to_unknown().create_ref()? })
}

impl AbortListener {
    /// `signal.removeEventListener('abort', listener)`, and release both references.
    fn remove(self, env: &Env) -> Result<()> {
        let signal = self.signal.get_value(env)?.coerce_to_object()?;
        let listener = self.listener.get_value(env)?;
        let remove: Function<FnArgs<(&str, Unknown<'_>)>, Unknown<'_>> =
            signal.get_named_property("removeEventListener")?;
        remove.apply(signal, ("abort", listener).into())?;
        self.signal.unref(env)?;
        self.listener.unref(env)
    }
}

/// The core's parsing and the build, on the worker thread.
fn build(request: Request, cancel: &CancelToken) -> zeroimage::Result<zeroimage::BuildResult> {
    let base: Base = match &request.base {
        Some(base) => base.parse()?,
        None => Base::default(),
    };
    let platform = request.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let sink = match &request.output {
        Some(output) => output.parse::<Sink>()?,
        None => Sink::default_for(&request.entrypoint),
    };
    let mut options = BuildOptions {
        path: request.path,
        args: request.args,
        env: request.env,
        workdir: request.workdir,
        user: request.user,
        labels: request.labels,
        annotations: request.annotations,
        allow_dynamic: request.allow_dynamic,
        format: request.format.as_deref().map(str::parse::<Format>).transpose()?,
        compression: match request.compression_level {
            Some(level) => Compression::gzip(level),
            None => Compression::default(),
        },
        source_date_epoch: request
            .source_date_epoch
            .map(|epoch| {
                u64::try_from(epoch).map_err(|_| zeroimage::Error::InvalidOption {
                    option: "sourceDateEpoch",
                    value: epoch.to_string(),
                    reason: "expected whole seconds since 1970-01-01".into(),
                })
            })
            .transpose()?,
        cancel: cancel.clone(),
        ..BuildOptions::default()
    };
    for tag in &request.tags {
        options.tags.push(tag.parse()?);
    }
    if let Some(callback) = request.on_progress {
        options.progress = Some(Arc::new(move |p: &zeroimage::Progress| {
            let event = ProgressEvent {
                stage: p.stage.as_str().to_string(),
                current: i64::try_from(p.current).unwrap_or(i64::MAX),
                total: p.total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            };
            callback.call(event, ThreadsafeFunctionCallMode::NonBlocking);
        }));
    }
    zeroimage::build_image(&base, &request.entrypoint, platform.as_ref(), &[sink], &options)
}

/// The `runCli` task.
pub struct CliTask {
    args: Vec<String>,
    cancel: CancelToken,
    abort_listener: Option<AbortListener>,
}

impl Task for CliTask {
    type Output = i32;
    type JsValue = i32;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(zeroimage::cli::run_with(std::mem::take(&mut self.args), &self.cancel))
    }

    fn resolve(&mut self, _env: Env, code: i32) -> Result<Self::JsValue> {
        Ok(code)
    }

    fn finally(mut self, env: Env) -> Result<()> {
        match self.abort_listener.take() {
            Some(listener) => listener.remove(&env),
            None => Ok(()),
        }
    }
}

/// Run the `zeroimage` command line with `argv` (the arguments after the program name, e.g.
/// `process.argv.slice(2)`) and resolve to its exit code: 0 on success, 1 when the command
/// fails, 2 for a usage error. Output goes straight to the process's stdout and stderr.
///
/// `signal` cancels a running command the way Ctrl-C does: nothing is written, exit code 1.
#[napi(ts_args_type = "argv: string[], signal?: AbortSignal", ts_return_type = "Promise<number>")]
pub fn run_cli(env: Env, argv: Vec<String>, signal: Option<Object<'_>>) -> Result<AsyncTask<CliTask>> {
    let mut task = CliTask { args: argv, cancel: CancelToken::new(), abort_listener: None };
    if let Some(signal) = &signal {
        if signal.get::<bool>("aborted")?.unwrap_or(false) {
            task.cancel.cancel();
        } else {
            task.abort_listener = Some(add_abort_listener(&env, signal, &task.cancel)?);
        }
    }
    Ok(AsyncTask::new(task))
}

/// A JS `Error` with `code` set, handed back as a napi error that rejects with that object.
fn coded_error(env: &Env, code: &str, message: &str) -> Error {
    let js_error = JsError::from(Error::new(code, message));
    let value = js_error.into_unknown(*env);
    Error::from(value)
}
