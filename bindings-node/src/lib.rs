//! The npm package `zeroimage`: a thin napi-rs binding of the core.
//!
//! Each exported call converts its arguments on the JavaScript thread, then runs one core
//! function inside an [`AsyncTask`] on the libuv thread pool. All parsing of strings (base,
//! platform, outputs, push references, tags, credentials) happens in the core, inside
//! `compute`, and arguments of the wrong JS type are caught there too, so bad input rejects the
//! returned Promise instead of throwing. Rejections are `Error`s whose `code` is
//! the core's [`zeroimage::ErrorKind`] string and whose `message` is [`zeroimage::Error::report`].

use indexmap::IndexMap;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::UnknownRef;
use napi_derive::napi;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroimage::registry::keychain::CredentialSource;
use zeroimage::registry::Logger;
use zeroimage::{
    Base, BaseOptions, BuildOptions, CancelToken, Compression, Credentials, ErrorKind, Format, Platform,
    RegistryOptions, Sink,
};

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

/// `onLog`: called on the JavaScript thread with each line the registry client logs (the CLI's
/// `--verbose` output); never receives a secret.
type LogCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

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
    /// also reads), `oci:DIR[:TAG]`, `docker-daemon:NAME[:TAG]` or `docker://REF`; default
    /// `<program file name>.tar` in the current directory, none when `push` is given.
    pub output: Option<String>,
    /// Push the image to a registry (`--push`): `REF` or `docker://REF`, or a list of them (the
    /// blobs go up once, then every tag). Combines with `output`.
    pub push: Option<Either<String, Vec<String>>>,
    /// Allow plain HTTP and unverified TLS for registries (`--insecure`); loopback registries
    /// may always use plain HTTP.
    pub insecure: Option<bool>,
    /// PEM file(s) of CA certificates to trust for registries (`--ca-cert`).
    pub ca_cert: Option<Either<String, Vec<String>>>,
    /// Registry credentials `'USER:PASSWORD'` (`--creds`); default: the ones stored by
    /// `login` / `docker login` / `podman login`, else anonymous.
    pub creds: Option<String>,
    /// Seconds a registry request may make no progress before it is abandoned (`--timeout`);
    /// default 60.
    pub timeout: Option<f64>,
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
    /// Media types of a push: `'oci'` or `'docker'`; default: follow the base. Archives and
    /// `oci:` layouts always hold OCI manifests.
    #[napi(ts_type = "'oci' | 'docker' | string")]
    pub format: Option<String>,
    /// `'lambda'`: check the image against AWS Lambda's container-image rules before anything
    /// is written; every violation is listed in one `invalid_input` error.
    #[napi(ts_type = "'lambda' | string")]
    pub profile: Option<String>,
    /// How the program's layer is compressed: `'gzip'` (default), `'zstd'` (Docker 20.10, umoci
    /// and AWS Lambda need gzip) or `'none'`.
    #[napi(ts_type = "'gzip' | 'zstd' | 'none' | string")]
    pub compression: Option<String>,
    /// Compression level: gzip 0–9 (default 6), zstd 1–19 (default 3).
    pub compression_level: Option<u32>,
    /// Threads to compress with; default: the number of cores.
    pub jobs: Option<u32>,
    /// Timestamp (seconds since 1970) of the config, history and file times; default
    /// `$SOURCE_DATE_EPOCH`, else 0.
    pub source_date_epoch: Option<i64>,
    /// Called with a {@link ProgressEvent} as the build advances, on the JavaScript thread. An
    /// exception it throws is an uncaught exception (like a throwing event listener's); the
    /// build goes on.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<ProgressCallback>,
    /// Called with each line the registry client logs: where credentials came from, mounts,
    /// uploads, retries (the CLI's `--verbose`). Never receives a secret.
    #[napi(ts_type = "(line: string) => void")]
    pub on_log: Option<LogCallback>,
    /// Aborts the build: the Promise rejects with `code === 'cancelled'` and no output is left.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// What {@link buildImage} and {@link writeBase} resolve to.
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
    /// Every output written, as transport strings (a push is `'docker://REF'`).
    pub outputs: Vec<String>,
    /// The manifest digest each output holds, in the order of `outputs`. Archives and layouts
    /// hold OCI manifests; a push keeps the base's format (or `format`) and gzips uncompressed
    /// base layers, so its digest can differ.
    pub digests: Vec<String>,
    /// The names given to the image.
    pub tags: Vec<String>,
    /// `REF@sha256:…` for each `push` target, in order (what the CLI prints); empty without
    /// `push`.
    pub pushed: Vec<String>,
}

impl BuildResult {
    fn new(result: zeroimage::BuildResult, pushed: Vec<String>) -> BuildResult {
        BuildResult {
            output: result.outputs.first().cloned().unwrap_or_default(),
            digest: result.digest,
            config_digest: result.config_digest,
            size: i64::try_from(result.size).unwrap_or(i64::MAX),
            platform: result.platform.to_string(),
            outputs: result.outputs,
            digests: result.digests,
            tags: result.tags,
            pushed,
        }
    }
}

/// How the registry options arrive from JS, before the core parses them.
#[derive(Default)]
struct RegistryRequest {
    insecure: bool,
    ca_certs: Vec<String>,
    creds: Option<String>,
    timeout: Option<f64>,
    on_log: Option<LogCallback>,
}

impl RegistryRequest {
    /// [`RegistryOptions`], parsed by the core (on the worker thread).
    fn parse(self) -> zeroimage::Result<RegistryOptions> {
        let timeout = match self.timeout {
            None => None,
            Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => {
                Some(Duration::from_secs_f64(seconds))
            }
            Some(seconds) => {
                return Err(zeroimage::Error::InvalidOption {
                    option: "timeout",
                    value: seconds.to_string(),
                    reason: "expected a positive number of seconds".into(),
                })
            }
        };
        let log = self.on_log.map(|callback| {
            Logger::new(move |line| {
                callback.call(line.to_string(), ThreadsafeFunctionCallMode::NonBlocking);
            })
        });
        let credentials = self.creds.as_deref().map(str::parse::<Credentials>).transpose()?;
        if let (Some(log), Some(creds)) = (&log, &credentials) {
            log.log(&format!("credentials: user {} from creds", creds.username().unwrap_or("?")));
        }
        Ok(RegistryOptions {
            insecure: self.insecure,
            ca_certs: self.ca_certs.into_iter().map(PathBuf::from).collect(),
            credentials,
            timeout,
            log,
            ..RegistryOptions::default()
        })
    }
}

/// A build request, converted on the JavaScript thread and parsed by the core in `compute`.
struct Request {
    entrypoint: PathBuf,
    base: Option<String>,
    platform: Option<String>,
    output: Option<String>,
    push: Vec<String>,
    registry: RegistryRequest,
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
    profile: Option<String>,
    compression: Option<String>,
    compression_level: Option<u32>,
    jobs: Option<u32>,
    source_date_epoch: Option<i64>,
    on_progress: Option<ProgressCallback>,
}

/// The abort listener added to a caller's `AbortSignal`, removed again when the task settles.
struct AbortListener {
    signal: UnknownRef,
    listener: UnknownRef,
}

/// One core call on the worker thread: `C` is what the core returns.
type Run<C> = Box<dyn FnOnce(&CancelToken) -> zeroimage::Result<C> + Send>;

/// What a task's `compute` produces: the core's own error is kept so `resolve` can make a JS
/// `Error` with `code` set to its kind.
type Outcome<T> = std::result::Result<T, (&'static str, String)>;

/// The task behind every Promise-returning call: runs one core call (or rejects with why its
/// arguments could not be converted, as `invalid_input`), converts its result with `to_js`,
/// and removes the abort listener when it settles.
pub struct CoreTask<C: Send + 'static, J> {
    run: Option<std::result::Result<Run<C>, String>>,
    to_js: fn(C) -> J,
    cancel: CancelToken,
    abort_listener: Option<AbortListener>,
}

impl<C: Send + 'static, J> CoreTask<C, J> {
    fn new(to_js: fn(C) -> J) -> Self {
        CoreTask { run: None, to_js, cancel: CancelToken::new(), abort_listener: None }
    }

    /// Set what runs: `run` if the arguments converted, else a rejection saying which `what`
    /// (`options`, `arguments`) were invalid, and why.
    fn with(mut self, what: &str, run: Result<Run<C>>) -> AsyncTask<Self>
    where
        Self: Task,
    {
        self.run = Some(run.map_err(|err| format!("invalid {what}: {}", err.reason)));
        AsyncTask::new(self)
    }

    /// Cancel on `signal`'s abort (at once when it is already aborted).
    fn listen(&mut self, env: &Env, signal: Option<&Object<'_>>) -> Result<()> {
        if let Some(signal) = signal {
            if signal.get::<bool>("aborted")?.unwrap_or(false) {
                self.cancel.cancel();
            } else {
                self.abort_listener = Some(add_abort_listener(env, signal, &self.cancel)?);
            }
        }
        Ok(())
    }
}

impl<C: Send + 'static, J: ToNapiValue + TypeName> Task for CoreTask<C, J> {
    type Output = Outcome<C>;
    type JsValue = J;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(match self.run.take() {
            Some(Ok(run)) => run(&self.cancel).map_err(|e| (e.kind().as_str(), e.report())),
            Some(Err(message)) => Err((ErrorKind::InvalidInput.as_str(), message)),
            None => Err((ErrorKind::InvalidInput.as_str(), "the task was already run".to_string())),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        let result = output.map_err(|(code, message)| coded_error(&env, code, &message))?;
        Ok((self.to_js)(result))
    }

    fn finally(mut self, env: Env) -> Result<()> {
        match self.abort_listener.take() {
            Some(listener) => listener.remove(&env),
            None => Ok(()),
        }
    }
}

/// The `buildImage` task.
pub type BuildTask = CoreTask<(zeroimage::BuildResult, Vec<String>), BuildResult>;

/// An options object converted by the `FromNapiValue` napi-rs generates for `#[napi(object)]`;
/// anything but an object (or, when `optional`, `undefined`/`null`) is an error.
fn object_arg<T: FromNapiValue>(value: Option<Unknown<'_>>, optional: bool, example: &str) -> Result<Option<T>> {
    let value = match value {
        Some(value) => value,
        None if optional => return Ok(None),
        None => return Err(Error::new(Status::ObjectExpected, format!("expected an object such as {example}"))),
    };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null if optional => Ok(None),
        // SAFETY: `T::from_napi_value` is the conversion napi-rs generates for `#[napi(object)]`
        // types; it reads every field through checked N-API calls, so a field of the wrong type
        // is an `Err`, which we turn into a rejection.
        #[allow(unsafe_code)]
        ValueType::Object => unsafe { value.cast::<T>() }.map(Some),
        _ => Err(Error::new(Status::ObjectExpected, format!("expected an object such as {example}"))),
    }
}

/// A string argument named `name`.
fn string_arg(value: Option<Unknown<'_>>, name: &str) -> Result<String> {
    match value {
        Some(value) if value.get_type()? == ValueType::String => {
            // SAFETY: checked to be a string just above.
            #[allow(unsafe_code)]
            unsafe {
                value.cast::<String>()
            }
        }
        _ => Err(Error::new(Status::StringExpected, format!("{name} must be a string"))),
    }
}

/// `'a'` or `['a', 'b']` as a list.
fn one_or_many(value: Option<Either<String, Vec<String>>>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(Either::A(one)) => vec![one],
        Some(Either::B(many)) => many,
    }
}

/// Build a container image of one program, like `zeroimage build`; with `push`, also push it
/// to registries (`zeroimage build --push`).
///
/// Runs off the JavaScript thread; every option is checked by the core, so bad input rejects
/// the Promise with an `Error` whose `code` is `'invalid_input'`, `'not_found'`, `'auth'`,
/// `'registry'`, `'network'`, `'io'`, `'unsupported'`, `'cancelled'`, … and whose `message`
/// is the CLI's error text.
///
/// ```js
/// const { buildImage } = require('zeroimage')
/// const result = await buildImage({ entrypoint: './hello', output: 'hello.tar', tag: 'hello:1.0' })
/// console.log(result.digest)
/// ```
#[napi(ts_args_type = "options: BuildImageOptions", ts_return_type = "Promise<BuildResult>")]
pub fn build_image(env: Env, options: Unknown<'_>) -> AsyncTask<BuildTask> {
    let mut task = BuildTask::new(|(result, pushed)| BuildResult::new(result, pushed));
    let request = object_arg::<BuildImageOptions>(Some(options), false, "{ entrypoint: './server' }")
        .and_then(|o| accept(&env, o.expect("required"), &mut task));
    task.with("options", request.map(|request| -> Run<_> { Box::new(move |cancel| build(request, cancel)) }))
}

/// Convert the options into a [`Request`] and hook up the abort signal.
fn accept(env: &Env, options: BuildImageOptions<'_>, task: &mut BuildTask) -> Result<Request> {
    task.listen(env, options.signal.as_ref())?;
    Ok(Request {
        entrypoint: PathBuf::from(options.entrypoint),
        base: options.base,
        platform: options.platform,
        output: options.output,
        push: one_or_many(options.push),
        registry: RegistryRequest {
            insecure: options.insecure.unwrap_or(false),
            ca_certs: one_or_many(options.ca_cert),
            creds: options.creds,
            timeout: options.timeout,
            on_log: options.on_log,
        },
        tags: one_or_many(options.tag),
        env: options.env.unwrap_or_default().into_iter().collect(),
        args: options.args.unwrap_or_default(),
        user: options.user,
        workdir: options.workdir,
        path: options.path,
        labels: options.labels.unwrap_or_default(),
        annotations: options.annotations.unwrap_or_default(),
        allow_dynamic: options.allow_dynamic.unwrap_or(false),
        format: options.format,
        profile: options.profile,
        compression: options.compression,
        compression_level: options.compression_level,
        jobs: options.jobs,
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

/// `onProgress` as the core's progress callback.
fn progress_fn(callback: ProgressCallback) -> zeroimage::ProgressFn {
    Arc::new(move |p: &zeroimage::Progress| {
        let event = ProgressEvent {
            stage: p.stage.as_str().to_string(),
            current: i64::try_from(p.current).unwrap_or(i64::MAX),
            total: p.total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
        };
        callback.call(event, ThreadsafeFunctionCallMode::NonBlocking);
    })
}

/// The core's parsing and the build, on the worker thread, as the CLI's `build` does it.
fn build(request: Request, cancel: &CancelToken) -> zeroimage::Result<(zeroimage::BuildResult, Vec<String>)> {
    let base: Base = match &request.base {
        Some(base) => base.parse()?,
        None => Base::default(),
    };
    let registry = request.registry.parse()?;
    let platform = request.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let sinks = Sink::for_build(&request.entrypoint, request.output.as_deref(), &request.push)?;
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
        profile: request.profile.as_deref().map(str::parse::<zeroimage::Profile>).transpose()?,
        compression: Compression::from_options(
            request.compression.as_deref().unwrap_or("gzip"),
            request.compression_level,
            request.jobs,
        )?,
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
        registry,
        ..BuildOptions::default()
    };
    for tag in &request.tags {
        options.tags.push(tag.parse()?);
    }
    options.progress = request.on_progress.map(progress_fn);
    let result = zeroimage::build_image(&base, &request.entrypoint, platform.as_ref(), &sinks, &options)?;
    let pushed = result.pushed.clone();
    Ok((result, pushed))
}

/// Options of {@link writeBase}, as `zeroimage base` takes them.
#[napi(object, object_to_js = false)]
pub struct WriteBaseOptions<'env> {
    /// The base to write (`BASE`), e.g. `'builtin:static'`.
    pub base: String,
    /// Where to write it: `PATH` or `oci-archive:PATH`, or `oci:DIR[:TAG]`; default
    /// `<builtin name>.tar` for a built-in base.
    pub output: Option<String>,
    /// Name(s) for the image (`--tag`); default `zeroimage-builtin-<name>:<zeroimage version>`.
    pub tag: Option<Either<String, Vec<String>>>,
    /// Platform `os/arch[/variant]` the config declares; default `linux/<this machine's
    /// architecture>`.
    pub platform: Option<String>,
    /// Manifest and config media types: `'oci'` (default) or `'docker'`.
    #[napi(ts_type = "'oci' | 'docker' | string")]
    pub format: Option<String>,
    /// Manifest annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Called with a {@link ProgressEvent} as the outputs are written.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<ProgressCallback>,
    /// Aborts the write: the Promise rejects with `code === 'cancelled'` and no output is left.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
}

/// The `writeBase` task.
pub type WriteBaseTask = CoreTask<zeroimage::BuildResult, BuildResult>;

/// Write a base image on its own, like `zeroimage base`: e.g. `builtin:static` as an archive
/// for `docker load` or a Dockerfile's `FROM`. Resolves to the same result as
/// {@link buildImage} (with `pushed` empty).
#[napi(ts_args_type = "options: WriteBaseOptions", ts_return_type = "Promise<BuildResult>")]
pub fn write_base(env: Env, options: Unknown<'_>) -> AsyncTask<WriteBaseTask> {
    let mut task = WriteBaseTask::new(|result| BuildResult::new(result, Vec::new()));
    let options = object_arg::<WriteBaseOptions>(Some(options), false, "{ base: 'builtin:static' }")
        .map(|o| o.expect("required"))
        .and_then(|o| task.listen(&env, o.signal.as_ref()).map(|()| o));
    let run = options.map(|o| -> Run<_> {
        let (base, output, tags, platform, format) = (o.base, o.output, one_or_many(o.tag), o.platform, o.format);
        let (annotations, on_progress) = (o.annotations.unwrap_or_default(), o.on_progress);
        Box::new(move |cancel| {
            let base: Base = base.parse()?;
            let platform = platform.as_deref().map(str::parse::<Platform>).transpose()?;
            let sink = Sink::for_base(&base, output.as_deref())?;
            let mut options = BaseOptions {
                format: format.as_deref().map(str::parse::<Format>).transpose()?,
                annotations,
                progress: on_progress.map(progress_fn),
                cancel: cancel.clone(),
                ..BaseOptions::default()
            };
            for tag in &tags {
                options.tags.push(tag.parse()?);
            }
            zeroimage::write_base(&base, platform.as_ref(), &[sink], &options)
        })
    });
    task.with("options", run)
}

/// Options of {@link login}.
#[napi(object, object_to_js = false)]
pub struct LoginOptions {
    /// Allow plain HTTP and unverified TLS (`--insecure`); loopback registries may always use
    /// plain HTTP.
    pub insecure: Option<bool>,
    /// PEM file(s) of CA certificates to trust (`--ca-cert`).
    pub ca_cert: Option<Either<String, Vec<String>>>,
    /// Seconds a request may make no progress before it is abandoned; default 60.
    pub timeout: Option<f64>,
    /// Called with each line the registry client logs (the CLI's `--verbose`); never receives
    /// a secret.
    #[napi(ts_type = "(line: string) => void")]
    pub on_log: Option<LogCallback>,
}

/// The `login` task.
pub type LoginTask = CoreTask<CredentialSource, String>;

/// Log in to a registry, like `zeroimage login` (and `docker login`): check the credentials
/// against the registry, then store them in the credential helper Docker's `config.json` names
/// for it (`credHelpers`, `credsStore`), else in its `auths` (`$DOCKER_CONFIG/config.json`,
/// default `~/.docker/config.json`). Resolves to where they were stored, e.g.
/// `'/home/me/.docker/config.json (auths)'`.
///
/// Wrong credentials reject with `code === 'auth'` and store nothing.
#[napi(
    ts_args_type = "registry: string, username: string, password: string, options?: LoginOptions",
    ts_return_type = "Promise<string>"
)]
pub fn login(
    registry: Option<Unknown<'_>>,
    username: Option<Unknown<'_>>,
    password: Option<Unknown<'_>>,
    options: Option<Unknown<'_>>,
) -> AsyncTask<LoginTask> {
    let task = LoginTask::new(|source| source.to_string());
    let args = (|| {
        let registry = string_arg(registry, "registry")?;
        let username = string_arg(username, "username")?;
        let password = string_arg(password, "password")?;
        let options = object_arg::<LoginOptions>(options, true, "{ insecure: true }")?;
        Ok((registry, username, password, options))
    })();
    task.with(
        "arguments",
        args.map(|(registry, username, password, options)| -> Run<_> {
            let options =
                options.unwrap_or(LoginOptions { insecure: None, ca_cert: None, timeout: None, on_log: None });
            let request = RegistryRequest {
                insecure: options.insecure.unwrap_or(false),
                ca_certs: one_or_many(options.ca_cert),
                creds: None,
                timeout: options.timeout,
                on_log: options.on_log,
            };
            Box::new(move |_| zeroimage::registry::login(&registry, &username, &password, &request.parse()?))
        }),
    )
}

/// The `logout` task.
pub type LogoutTask = CoreTask<bool, bool>;

/// Log out of a registry, like `zeroimage logout`: erase its stored credentials (from its
/// credential helper and from `auths`). Resolves to whether there were any.
#[napi(ts_args_type = "registry: string", ts_return_type = "Promise<boolean>")]
pub fn logout(registry: Option<Unknown<'_>>) -> AsyncTask<LogoutTask> {
    let task = LogoutTask::new(|erased| erased);
    let registry = string_arg(registry, "registry");
    task.with(
        "arguments",
        registry.map(|registry| -> Run<_> { Box::new(move |_| zeroimage::registry::logout(&registry)) }),
    )
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
