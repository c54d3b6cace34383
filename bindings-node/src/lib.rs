//! The npm package `zeroimage`: a thin napi-rs binding of the core.
//!
//! `buildImage` turns its options object into JSON on the JavaScript thread and hands it to the
//! core's one option schema ([`BuildSpec::from_json`], camelCase keys), which rejects unknown
//! keys (naming the nearest valid one) and wrong shapes and checks every bound, inside the
//! task's `compute`: bad input rejects the returned Promise, it never throws or aborts. The
//! binding adds only what is Node's: callbacks (a throwing one cancels the build and becomes
//! the rejection's `cause`), `AbortSignal` (an abort rejects with an `AbortError` carrying
//! `signal.reason`), and errors whose `code` is the core's [`zeroimage::ErrorKind`] string
//! and whose `message` is [`zeroimage::Error::report`] with hints spelled the Node way
//! (`allowDynamic: true`). [`Image`] is the same model as objects, over the core's
//! [`ImageBuilder`].

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{JsValue, UnknownRef};
use napi_derive::napi;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use zeroimage::registry::keychain::CredentialSource;
use zeroimage::registry::Logger;
use zeroimage::{
    Base, BaseOptions, BuildRequest, BuildSpec, CancelToken, Entry, EntryKind, ErrorKind, Format, Frontend, Hooks,
    ImageBuilder, Layer, LayerOptions, Platform, Program, Sink, WriteOptions,
};

/// The version of zeroimage (the Rust workspace version, equal to the npm package's).
#[napi]
pub const VERSION: &str = zeroimage::VERSION;

/// How deep option values may nest before they are refused (a cycle, say).
const MAX_DEPTH: usize = 16;

/// What a build is doing: `current` of `total` bytes done in `stage`.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct ProgressEvent {
    /// `'layer'` while files are archived and compressed into a layer, `'write'` while the
    /// image is written to an output.
    #[napi(ts_type = "'layer' | 'write'")]
    pub stage: String,
    /// Bytes done so far in this stage.
    pub current: i64,
    /// Bytes this stage has to do, when known.
    pub total: Option<i64>,
}

/// `onProgress`: called on the JavaScript thread; the build waits for it to return.
type ProgressCallback = ThreadsafeFunction<ProgressEvent, (), ProgressEvent, Status, false, true>;

/// `onLog`: called on the JavaScript thread with each line the registry client logs (the CLI's
/// `--verbose` output); never receives a secret.
type LogCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Options of {@link buildImage}: the CLI's `build` options in camelCase (one schema in the
/// core). An unknown key or a value of the wrong shape rejects with `code === 'invalid_input'`,
/// naming the key (and the nearest valid one).
///
/// This type only documents the options for TypeScript; the object itself is read by the core.
#[napi(object, object_to_js = false, object_from_js = false)]
pub struct BuildImageOptions {
    /// The program to package: a Linux ELF executable (static, for a scratch base). Several
    /// programs (a list, `'PLATFORM=PATH'` allowed, or an object of platform to path) make one
    /// multi-platform image index.
    #[napi(ts_type = "string | Array<string> | Record<string, string>")]
    pub entrypoint: String,
    /// The base image (`--from`), as the CLI spells it: `'scratch'` (default),
    /// `'builtin:static'`, `REF` or `docker://REF`, `oci-archive:PATH[:NAME]`, `oci:DIR[:NAME]`,
    /// `docker-archive:PATH[:NAME]`.
    pub base: Option<String>,
    /// Base image from an OCI archive (the same as `base: 'oci-archive:PATH'`).
    pub from_archive: Option<String>,
    /// Target platform `os/arch[/variant]`, e.g. `'linux/arm64'`; default: the program's
    /// architecture.
    pub platform: Option<String>,
    /// Target operating system (with `arch`).
    pub os: Option<String>,
    /// Target architecture (instead of `platform`).
    pub arch: Option<String>,
    /// Target architecture variant (with `arch`).
    pub variant: Option<String>,
    /// Where to write the image: `PATH` or `oci-archive:PATH` (an OCI archive that `docker load`
    /// also reads), `oci:DIR[:TAG]`, `docker-daemon:NAME[:TAG]` or `docker://REF`; default
    /// `<program file name>.tar` in the current directory, none when `push` is given.
    pub output: Option<String>,
    /// Push the image to a registry (`--push`): `REF` or `docker://REF`, or a list of them (the
    /// blobs go up once, then every tag). Combines with `output`.
    pub push: Option<Either<String, Vec<String>>>,
    /// Name(s) for the image (`--tag`), e.g. `'registry.example.com/server:1.0'`.
    pub tag: Option<Either<String, Vec<String>>>,
    /// Files beside the program (`--add`): `'SRC:DEST'` (a host file or directory, an absolute
    /// path in the image), `{ src, dest, owner?, followSymlinks? }`, or a list of them. All go
    /// into one layer below the program's, so an asset change leaves the program's layer as it is.
    #[napi(ts_type = "string | AddItem | Array<string | AddItem>")]
    pub add: Option<String>,
    /// Owner `'UID[:GID]'` of the added files (default `'0:0'`), e.g. for a non-root program's
    /// writable directory.
    pub add_owner: Option<String>,
    /// Copy what symlinks in an added directory point to when they point outside it, instead
    /// of refusing them.
    pub add_follow_symlinks: Option<bool>,
    /// Environment variables, merged over the base's by name, in this order: an object, or
    /// `'KEY=VALUE'` strings.
    #[napi(ts_type = "Record<string, string> | Array<string>")]
    pub env: Option<String>,
    /// Arguments after the entrypoint: the image's `Cmd`.
    pub args: Option<Vec<String>>,
    /// The user to run as: name, uid or `uid:gid`.
    pub user: Option<String>,
    /// The working directory (absolute).
    pub workdir: Option<String>,
    /// Path of the program inside the image; default `/<program file name>`.
    pub path: Option<String>,
    /// Config labels: an object, or `'KEY=VALUE'` strings.
    #[napi(ts_type = "Record<string, string> | Array<string>")]
    pub labels: Option<String>,
    /// Manifest annotations: an object, or `'KEY=VALUE'` strings.
    #[napi(ts_type = "Record<string, string> | Array<string>")]
    pub annotations: Option<String>,
    /// Build a dynamically linked program even if the base lacks its loader.
    pub allow_dynamic: Option<bool>,
    /// Add the program's loader and shared libraries as a layer below it (`--bundle-libs`).
    pub bundle_libs: Option<bool>,
    /// Take bundled libraries from this directory, standing for the target's `/` (`--sysroot`).
    pub sysroot: Option<String>,
    /// Also bundle libraries the program only dlopens, by soname (`--bundle-lib`).
    #[napi(ts_type = "string | Array<string>")]
    pub bundle_lib: Option<String>,
    /// Check the image against AWS Lambda's rules before anything is written (`--profile`).
    #[napi(ts_type = "'lambda'")]
    pub profile: Option<String>,
    /// With several programs pushed: also tag each platform's image as `TAG-amd64`… (`--platform-tags`).
    pub platform_tags: Option<bool>,
    /// With several programs: the platform an archive's `manifest.json` names for Docker 20.10.
    pub docker_platform: Option<String>,
    /// Manifest and config media types; default: follow the base.
    #[napi(ts_type = "'oci' | 'docker'")]
    pub format: Option<String>,
    /// How layers are compressed: `'gzip'` (default), `'zstd'` (Docker 20.10, umoci and AWS
    /// Lambda need gzip) or `'none'`.
    #[napi(ts_type = "'gzip' | 'zstd' | 'none'")]
    pub compression: Option<String>,
    /// Compression level: gzip 0–9 (default 6), zstd 1–19 (default 3).
    pub compression_level: Option<u32>,
    /// Threads to compress with, 1–256; default: the number of cores. The output is the same
    /// whatever it is.
    pub jobs: Option<u32>,
    /// Timestamp (seconds since 1970, at most 253402300799: the year 9999) of the config,
    /// history and file times; default `$SOURCE_DATE_EPOCH`, else 0.
    pub source_date_epoch: Option<i64>,
    /// Allow plain HTTP and unverified TLS for registries (`--insecure`); loopback registries
    /// may always use plain HTTP.
    pub insecure: Option<bool>,
    /// PEM file(s) of CA certificates to trust for registries (`--ca-cert`).
    pub ca_cert: Option<Either<String, Vec<String>>>,
    /// Registry credentials `'USER:PASSWORD'` (`--creds`); default: the ones stored by
    /// `login` / `docker login` / `podman login`, else anonymous.
    pub creds: Option<String>,
    /// Seconds a registry request may make no progress before it is abandoned (`--timeout`),
    /// more than 0 and at most 86400; default 60.
    pub timeout: Option<f64>,
    /// Called with a {@link ProgressEvent} as the build advances, on the JavaScript thread. If
    /// it throws, the build is cancelled, nothing is written, and the Promise rejects with an
    /// `Error` whose `cause` is what it threw.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<String>,
    /// Called with each line the registry client logs: where credentials came from, mounts,
    /// uploads, retries (the CLI's `--verbose`). Never receives a secret. Throwing cancels the
    /// build as for `onProgress`.
    #[napi(ts_type = "(line: string) => void")]
    pub on_log: Option<String>,
    /// Aborts the build: the Promise rejects with an `AbortError` (`code === 'cancelled'`,
    /// `cause` = `signal.reason`) and no output is left.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<String>,
}

/// One item of `add` in its structured form.
#[napi(object, object_to_js = false, object_from_js = false)]
pub struct AddItem {
    /// A file or directory on the host.
    pub src: String,
    /// An absolute path in the image.
    pub dest: String,
    /// Owner `'UID[:GID]'` of everything added (default `'0:0'`).
    pub owner: Option<String>,
    /// Copy what symlinks pointing outside `src` point to, instead of refusing them.
    pub follow_symlinks: Option<bool>,
}

/// What {@link buildImage}, {@link writeBase} and {@link Image.write} resolve to.
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
    /// The names given to the image.
    pub tags: Vec<String>,
    /// `REF@sha256:…` for each `push` target, in order (what the CLI prints); empty without
    /// `push`.
    pub pushed: Vec<String>,
    /// The index digest when several programs made an image index.
    pub index_digest: Option<String>,
    /// Each platform's manifest digest (`{ 'linux/amd64': 'sha256:…' }`).
    pub manifests: BTreeMap<String, String>,
    /// The digest each output holds (`{ 'oci-archive:server.tar': 'sha256:…' }`).
    pub digests: BTreeMap<String, String>,
    /// The paths in the image of the shared libraries bundled (`bundleLibs: true`).
    pub bundled: Vec<String>,
}

impl BuildResult {
    fn new(result: zeroimage::BuildResult) -> BuildResult {
        BuildResult {
            output: result.outputs.first().cloned().unwrap_or_default(),
            digest: result.digest,
            config_digest: result.config_digest,
            size: i64::try_from(result.size).unwrap_or(i64::MAX),
            platform: result.platform.to_string(),
            outputs: result.outputs,
            tags: result.tags,
            pushed: result.pushed,
            index_digest: result.index_digest,
            manifests: result.manifests.into_iter().map(|m| (m.platform.to_string(), m.digest)).collect(),
            digests: result.written.into_iter().map(|w| (w.output, w.digest)).collect(),
            bundled: result.bundled.map(|b| b.libraries.into_iter().map(|l| l.path).collect()).unwrap_or_default(),
        }
    }
}

/// What a callback threw, kept (with the callback's name) until the task settles.
type Thrown = Arc<Mutex<Option<(&'static str, Error)>>>;

/// The JavaScript side of one call: its cancel token, the callbacks' first exception, and
/// the caller's `AbortSignal` with the listener added to it.
struct Caller {
    cancel: CancelToken,
    thrown: Thrown,
    signal: Option<UnknownRef>,
    listener: Option<UnknownRef>,
}

impl Caller {
    fn new() -> Caller {
        Caller { cancel: CancelToken::new(), thrown: Thrown::default(), signal: None, listener: None }
    }

    /// Cancel on `signal`'s abort (at once when it is already aborted).
    fn listen(&mut self, env: &Env, signal: Unknown<'_>) -> Result<()> {
        match signal.get_type()? {
            ValueType::Undefined | ValueType::Null => return Ok(()),
            ValueType::Object => {}
            _ => return Err(Error::new(Status::InvalidArg, "signal must be an AbortSignal")),
        }
        let object = signal.coerce_to_object()?;
        self.signal = Some(signal.create_ref()?);
        if object.get::<bool>("aborted")?.unwrap_or(false) {
            self.cancel.cancel();
            return Ok(());
        }
        let token = self.cancel.clone();
        let listener = env.create_function_from_closure::<(), (), _>("onabort", move |_| {
            token.cancel();
            Ok(())
        })?;
        let mut once = Object::new(env)?;
        once.set("once", true)?;
        let add: Function<FnArgs<(&str, Unknown<'_>, Object<'_>)>, Unknown<'_>> =
            object.get_named_property("addEventListener")?;
        add.apply(object, ("abort", listener.to_unknown(), once).into())?;
        self.listener = Some(listener.to_unknown().create_ref()?);
        Ok(())
    }

    /// `onProgress` as the core's progress callback.
    fn progress(&self, callback: ProgressCallback) -> zeroimage::ProgressFn {
        let call = self.caller("onProgress", callback);
        Arc::new(move |p: &zeroimage::Progress| {
            call(ProgressEvent {
                stage: p.stage.as_str().to_string(),
                current: i64::try_from(p.current).unwrap_or(i64::MAX),
                total: p.total.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            })
        })
    }

    /// `onLog` as the core's logger.
    fn logger(&self, callback: LogCallback) -> Logger {
        let call = self.caller("onLog", callback);
        Logger::new(move |line| call(line.to_string()))
    }

    /// Call `callback` on the JavaScript thread and wait for it to return, so that an exception
    /// it throws stops the work before it goes on: the exception is kept for the rejection
    /// and the work is cancelled. After a cancellation, callbacks are no longer called.
    fn caller<T: 'static + Send + JsValuesTupleIntoVec>(
        &self,
        name: &'static str,
        callback: ThreadsafeFunction<T, (), T, Status, false, true>,
    ) -> impl Fn(T) + Send + Sync + 'static {
        let (cancel, thrown) = (self.cancel.clone(), Arc::clone(&self.thrown));
        move |value: T| {
            if cancel.is_cancelled() {
                return;
            }
            let (done, wait) = std::sync::mpsc::sync_channel::<()>(1);
            let (cancel, thrown) = (cancel.clone(), Arc::clone(&thrown));
            let status = callback.call_with_return_value(value, ThreadsafeFunctionCallMode::Blocking, move |r, _| {
                if let Err(err) = r {
                    if err.status == Status::PendingException {
                        thrown.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((name, err));
                        cancel.cancel();
                    }
                }
                drop(done);
                Ok(())
            });
            // When the call was queued, wait until it ran (or was dropped at shutdown).
            if status == Status::Ok {
                let _ = wait.recv();
            }
        }
    }

    /// The rejection for a failed call: a callback's exception as `cause`, an abort as an
    /// `AbortError` carrying `signal.reason`, else the core's error with its `code`.
    fn rejection(&self, env: &Env, kind: ErrorKind, message: &str) -> Error {
        let thrown = self.thrown.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((name, err)) = thrown {
            // The napi error converts back to exactly the value thrown, an `Error` or not.
            let cause = err;
            let message = if kind == ErrorKind::Cancelled {
                format!("build cancelled: {name} threw; nothing was written")
            } else {
                format!("{name} threw: {message}")
            };
            return js_error(env, ErrorKind::Cancelled.as_str(), &message, None, Some(cause));
        }
        if kind == ErrorKind::Cancelled {
            if let Some(signal) = &self.signal {
                let reason = signal
                    .get_value(env)
                    .and_then(|s| s.coerce_to_object())
                    .and_then(|s| s.get_named_property::<Unknown<'_>>("reason"))
                    .ok();
                return js_error(env, kind.as_str(), message, Some("AbortError"), reason);
            }
        }
        js_error(env, kind.as_str(), message, None, None::<Unknown<'_>>)
    }

    /// Remove the abort listener and release the references.
    fn release(&mut self, env: &Env) -> Result<()> {
        if let (Some(signal), Some(listener)) = (&self.signal, self.listener.take()) {
            let signal = signal.get_value(env)?.coerce_to_object()?;
            let remove: Function<FnArgs<(&str, Unknown<'_>)>, Unknown<'_>> =
                signal.get_named_property("removeEventListener")?;
            remove.apply(signal, ("abort", listener.get_value(env)?).into())?;
            listener.unref(env)?;
        }
        if let Some(signal) = self.signal.take() {
            signal.unref(env)?;
        }
        Ok(())
    }
}

/// A JS `Error` with `code` (and `name`, `cause` when given), handed back as a napi error
/// that rejects with that object.
fn js_error<C: ToNapiValue>(env: &Env, code: &str, message: &str, name: Option<&str>, cause: Option<C>) -> Error {
    let value = JsError::from(Error::new(code, message)).into_unknown(*env);
    if let Ok(mut object) = value.coerce_to_object() {
        if let Some(name) = name {
            let _ = object.set("name", name);
        }
        if let Some(cause) = cause {
            let _ = object.set("cause", cause);
        }
    }
    Error::from(value)
}

/// One core call on the worker thread: `C` is what the core returns.
type Run<C> = Box<dyn FnOnce() -> zeroimage::Result<C> + Send>;

/// The task behind every Promise-returning call: runs one core call (or rejects with why its
/// arguments could not be read), converts its result with `to_js`, and cleans up the caller's
/// hooks when it settles.
pub struct CoreTask<C: Send + 'static, J> {
    run: Option<zeroimage::Result<Run<C>>>,
    to_js: Box<dyn FnOnce(C) -> J + Send>,
    caller: Caller,
}

impl<C: Send + 'static, J> CoreTask<C, J> {
    fn new(
        caller: Caller,
        run: zeroimage::Result<Run<C>>,
        to_js: impl FnOnce(C) -> J + Send + 'static,
    ) -> AsyncTask<Self>
    where
        Self: Task,
    {
        AsyncTask::new(CoreTask { run: Some(run), to_js: Box::new(to_js), caller })
    }
}

impl<C: Send + 'static, J: ToNapiValue + TypeName> Task for CoreTask<C, J> {
    type Output = std::result::Result<C, (ErrorKind, String)>;
    type JsValue = J;

    fn compute(&mut self) -> Result<Self::Output> {
        let spelled = |e: zeroimage::Error| (e.kind(), Frontend::Node.spell(&e.report()));
        Ok(match self.run.take() {
            Some(Ok(run)) => run().map_err(spelled),
            Some(Err(e)) => Err(spelled(e)),
            None => Err((ErrorKind::InvalidInput, "the task was already run".to_string())),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        match output {
            Ok(value) => {
                let to_js = std::mem::replace(&mut self.to_js, Box::new(|_| unreachable!("resolved twice")));
                Ok(to_js(value))
            }
            Err((kind, message)) => Err(self.caller.rejection(&env, kind, &message)),
        }
    }

    fn finally(mut self, env: Env) -> Result<()> {
        self.caller.release(&env)
    }
}

/// An argument error (not an object, a wrong type) as the core's `invalid_input` error.
fn invalid(what: &'static str, value: &str, reason: &str) -> zeroimage::Error {
    zeroimage::Error::InvalidOption { option: what, value: value.to_string(), reason: reason.to_string() }
}

/// An options object as JSON, and its callbacks.
type ReadOptions = (Map<String, Value>, Option<ProgressCallback>, Option<LogCallback>);

/// An options object read on the JavaScript thread: the callbacks and the signal taken out
/// and hooked to `caller`, everything else as JSON for the core's schema. Keys other than
/// `callbacks` and `signal` that hold functions are refused.
fn read_options(
    env: &Env,
    options: Option<Unknown<'_>>,
    optional: bool,
    example: &str,
    caller: &mut Caller,
) -> zeroimage::Result<ReadOptions> {
    let not_object = || invalid("options", "", &format!("expected an object such as {example}"));
    let value = match options {
        None if optional => return Ok((Map::new(), None, None)),
        None => return Err(not_object()),
        Some(v) => v,
    };
    match value.get_type().map_err(|_| not_object())? {
        ValueType::Undefined | ValueType::Null if optional => return Ok((Map::new(), None, None)),
        ValueType::Object if !value.is_array().unwrap_or(false) => {}
        _ => return Err(not_object()),
    }
    let object = value.coerce_to_object().map_err(|_| not_object())?;
    let keys = Object::keys(&object).map_err(|_| not_object())?;
    let (mut json, mut progress, mut log) = (Map::new(), None, None);
    for key in keys {
        let value: Unknown<'_> =
            object.get_named_property(&key).map_err(|_| invalid("options", &key, "it could not be read"))?;
        let kind = value.get_type().map_err(|_| invalid("options", &key, "it could not be read"))?;
        match key.as_str() {
            "signal" => caller.listen(env, value).map_err(|_| invalid("options", &key, "expected an AbortSignal"))?,
            "onProgress" | "onLog" if matches!(kind, ValueType::Undefined | ValueType::Null) => {}
            "onProgress" | "onLog" => {
                if kind != ValueType::Function {
                    return Err(invalid("options", &key, "expected a function"));
                }
                let bad = |_| invalid("options", &key, "the function could not be used");
                // SAFETY: checked to be a function just above; napi-rs wraps it in a
                // threadsafe function through checked N-API calls.
                #[allow(unsafe_code)]
                if key == "onProgress" {
                    progress = Some(unsafe { value.cast::<ProgressCallback>() }.map_err(bad)?);
                } else {
                    log = Some(unsafe { value.cast::<LogCallback>() }.map_err(bad)?);
                }
            }
            _ => {
                if kind == ValueType::Undefined {
                    continue;
                }
                json.insert(key.clone(), to_json(value, &key, 0)?);
            }
        }
    }
    Ok((json, progress, log))
}

/// A JS value as JSON for the option schema: `null`/`undefined`, booleans, finite numbers
/// (whole ones as integers), strings, arrays and plain objects. Functions, symbols and the
/// like are refused, naming `key`.
fn to_json(value: Unknown<'_>, key: &str, depth: usize) -> zeroimage::Result<Value> {
    let bad = |reason: &str| invalid("options", key, reason);
    if depth > MAX_DEPTH {
        return Err(bad("the value nests too deeply"));
    }
    let unreadable = |_| bad("it could not be read");
    // SAFETY (every `cast` below): the value's type was checked first.
    #[allow(unsafe_code)]
    let json = match value.get_type().map_err(unreadable)? {
        ValueType::Undefined | ValueType::Null => Value::Null,
        ValueType::Boolean => Value::Bool(unsafe { value.cast::<bool>() }.map_err(unreadable)?),
        ValueType::Number => {
            let n = unsafe { value.cast::<f64>() }.map_err(unreadable)?;
            if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
                Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| bad(&format!("expected a finite number, not {n}")))?
            }
        }
        ValueType::String => Value::String(unsafe { value.cast::<String>() }.map_err(unreadable)?),
        ValueType::Object if value.is_array().map_err(unreadable)? => {
            let array = unsafe { value.cast::<Array>() }.map_err(unreadable)?;
            let mut items = Vec::with_capacity(array.len() as usize);
            for i in 0..array.len() {
                let item = array.get::<Unknown<'_>>(i).map_err(unreadable)?;
                items.push(match item {
                    Some(item) => to_json(item, key, depth + 1)?,
                    None => Value::Null,
                });
            }
            Value::Array(items)
        }
        ValueType::Object => {
            let object = value.coerce_to_object().map_err(unreadable)?;
            let mut map = Map::new();
            for k in Object::keys(&object).map_err(unreadable)? {
                let v: Unknown<'_> = object.get_named_property(&k).map_err(unreadable)?;
                if v.get_type().map_err(unreadable)? != ValueType::Undefined {
                    map.insert(k, to_json(v, key, depth + 1)?);
                }
            }
            Value::Object(map)
        }
        ValueType::Function => return Err(bad("a function is not an option value")),
        ValueType::BigInt => return Err(bad("expected a number, not a BigInt")),
        _ => return Err(bad("expected a string, number, boolean, array or object")),
    };
    Ok(json)
}

/// Options outside a build of one program (`login`, `Image.fromBase`, `image.write`), read
/// through the same schema as a build's so that each is parsed and checked in one place: only
/// `allowed` keys (camelCase), the schema's program slot filled with `program` (or a stand-in
/// name; no file is opened).
fn settings(
    mut json: Map<String, Value>,
    allowed: &[&str],
    program: Option<String>,
    hooks: Hooks,
) -> zeroimage::Result<BuildRequest> {
    let elsewhere: Vec<String> = json.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
    json.insert("program".into(), Value::from(program.unwrap_or_else(|| "image".into())));
    // Unknown keys first (the schema names the nearest), then options of builds only.
    let spec = BuildSpec::from_json(Value::Object(json), Frontend::Node)?;
    if let Some(key) = elsewhere.first() {
        return Err(invalid("options", key, &format!("it is not an option here (they are {})", allowed.join(", "))));
    }
    spec.into_request(hooks)
}

/// The `buildImage` task.
pub type BuildTask = CoreTask<zeroimage::BuildResult, BuildResult>;

/// Build a container image of one program, like `zeroimage build`; with `push`, also push it
/// to registries (`zeroimage build --push`); with `add`, put files beside it.
///
/// Runs off the JavaScript thread; every option is checked by the core, so bad input rejects
/// the Promise with an `Error` whose `code` is `'invalid_input'`, `'not_found'`, `'auth'`,
/// `'registry'`, `'network'`, `'io'`, `'unsupported'`, `'cancelled'`, … and whose `message`
/// is the CLI's error text (hints name options as here: `allowDynamic: true`).
///
/// ```js
/// const { buildImage } = require('zeroimage')
/// const result = await buildImage({ entrypoint: './hello', output: 'hello.tar', tag: 'hello:1.0' })
/// console.log(result.digest)
/// ```
#[napi(ts_args_type = "options: BuildImageOptions", ts_return_type = "Promise<BuildResult>")]
pub fn build_image(env: Env, options: Option<Unknown<'_>>) -> AsyncTask<BuildTask> {
    let mut caller = Caller::new();
    let read = read_options(&env, options, false, "{ entrypoint: './server' }", &mut caller);
    let hooks_of = |caller: &Caller, progress: Option<ProgressCallback>, log: Option<LogCallback>| Hooks {
        cancel: caller.cancel.clone(),
        progress: progress.map(|p| caller.progress(p)),
        log: log.map(|l| caller.logger(l)),
    };
    let run = read.map(|(json, progress, log)| -> Run<_> {
        let hooks = hooks_of(&caller, progress, log);
        Box::new(move || BuildSpec::from_json(Value::Object(json), Frontend::Node)?.into_request(hooks)?.run())
    });
    BuildTask::new(caller, run, BuildResult::new)
}

/// Options of {@link writeBase}, as `zeroimage base` takes them.
#[napi(object, object_to_js = false, object_from_js = false)]
pub struct WriteBaseOptions {
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
    /// Manifest and config media types; default `'oci'`.
    #[napi(ts_type = "'oci' | 'docker'")]
    pub format: Option<String>,
    /// Manifest annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Called with a {@link ProgressEvent} as the outputs are written; throwing cancels the write.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<String>,
    /// Aborts the write: the Promise rejects with an `AbortError` and no output is left.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<String>,
}

/// The `writeBase` task.
pub type WriteBaseTask = CoreTask<zeroimage::BuildResult, BuildResult>;

/// Write a base image on its own, like `zeroimage base`: e.g. `builtin:static` as an archive
/// for `docker load` or a Dockerfile's `FROM`. Resolves to the same result as
/// {@link buildImage} (with `pushed` empty).
#[napi(ts_args_type = "options: WriteBaseOptions", ts_return_type = "Promise<BuildResult>")]
pub fn write_base(env: Env, options: Option<Unknown<'_>>) -> AsyncTask<WriteBaseTask> {
    let mut caller = Caller::new();
    let read = read_options(&env, options, false, "{ base: 'builtin:static' }", &mut caller);
    let run = read.and_then(|(json, progress, _)| -> zeroimage::Result<Run<_>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Spec {
            base: String,
            output: Option<String>,
            #[serde(default)]
            tag: OneOrMany,
            platform: Option<String>,
            format: Option<String>,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        let spec: Spec = serde_json::from_value(Value::Object(json))
            .map_err(|e| invalid("options", "", &e.to_string().replace("`", "")))?;
        let progress = progress.map(|p| caller.progress(p));
        let cancel = caller.cancel.clone();
        Ok(Box::new(move || {
            let base: Base = spec.base.parse()?;
            let platform = spec.platform.as_deref().map(str::parse::<Platform>).transpose()?;
            let sink = Sink::for_base(&base, spec.output.as_deref())?;
            let options = BaseOptions {
                format: spec.format.as_deref().map(str::parse::<Format>).transpose()?,
                annotations: spec.annotations,
                tags: spec.tag.0.iter().map(|t| t.parse()).collect::<zeroimage::Result<_>>()?,
                progress,
                cancel,
            };
            zeroimage::write_base(&base, platform.as_ref(), &[sink], &options)
        }))
    });
    WriteBaseTask::new(caller, run, BuildResult::new)
}

/// `'a'` or `['a', 'b']`.
#[derive(Default, serde::Deserialize)]
#[serde(from = "Either_")]
struct OneOrMany(Vec<String>);

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Either_ {
    One(String),
    Many(Vec<String>),
}

impl From<Either_> for OneOrMany {
    fn from(e: Either_) -> Self {
        match e {
            Either_::One(one) => OneOrMany(vec![one]),
            Either_::Many(many) => OneOrMany(many),
        }
    }
}

/// Options of {@link login}.
#[napi(object, object_to_js = false, object_from_js = false)]
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
    pub on_log: Option<String>,
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
    env: Env,
    registry: Option<Unknown<'_>>,
    username: Option<Unknown<'_>>,
    password: Option<Unknown<'_>>,
    options: Option<Unknown<'_>>,
) -> AsyncTask<LoginTask> {
    let mut caller = Caller::new();
    let run = (|| -> zeroimage::Result<Run<_>> {
        let registry = string_arg(registry, "registry")?;
        let username = string_arg(username, "username")?;
        let password = string_arg(password, "password")?;
        let (json, _, log) = read_options(&env, options, true, "{ insecure: true }", &mut caller)?;
        let hooks = Hooks { log: log.map(|l| caller.logger(l)), ..Hooks::default() };
        Ok(Box::new(move || {
            let request = settings(json, &["insecure", "caCert", "timeout"], None, hooks)?;
            zeroimage::registry::login(&registry, &username, &password, &request.options.registry)
        }))
    })();
    LoginTask::new(caller, run, |source| source.to_string())
}

/// The `logout` task.
pub type LogoutTask = CoreTask<bool, bool>;

/// Log out of a registry, like `zeroimage logout`: erase its stored credentials (from its
/// credential helper and from `auths`). Resolves to whether there were any.
#[napi(ts_args_type = "registry: string", ts_return_type = "Promise<boolean>")]
pub fn logout(registry: Option<Unknown<'_>>) -> AsyncTask<LogoutTask> {
    let run = string_arg(registry, "registry")
        .map(|registry| -> Run<_> { Box::new(move || zeroimage::registry::logout(&registry)) });
    LogoutTask::new(Caller::new(), run, |erased| erased)
}

/// A string argument named `name`.
fn string_arg(value: Option<Unknown<'_>>, name: &'static str) -> zeroimage::Result<String> {
    match value {
        Some(value) if value.get_type().ok() == Some(ValueType::String) => {
            // SAFETY: checked to be a string just above.
            #[allow(unsafe_code)]
            unsafe { value.cast::<String>() }.map_err(|_| invalid(name, "", "it could not be read"))
        }
        _ => Err(invalid(name, "", "expected a string")),
    }
}

/// The build options {@link Image.fromBase} takes.
const IMAGE_OPTIONS: [&str; 13] = [
    "platform",
    "os",
    "arch",
    "variant",
    "format",
    "compression",
    "compressionLevel",
    "jobs",
    "sourceDateEpoch",
    "insecure",
    "caCert",
    "creds",
    "timeout",
];

/// Options of {@link Image.addFiles}.
#[napi(object, object_to_js = false, object_from_js = false)]
pub struct AddFilesOptions {
    /// Owner `'UID[:GID]'` of items that name none (default `'0:0'`).
    pub owner: Option<String>,
    /// Follow symlinks that point outside an added directory, for items that do not say.
    pub follow_symlinks: Option<bool>,
    /// Called with a {@link ProgressEvent} as the files are compressed; throwing cancels.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<String>,
    /// Aborts adding the files.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<String>,
}

/// Options of {@link Image.addProgram}.
#[napi(object, object_to_js = false, object_from_js = false)]
pub struct AddProgramOptions {
    /// Where the program goes in the image; default `/<program file name>`.
    pub path: Option<String>,
    /// Add a dynamically linked program even if the image lacks its loader.
    pub allow_dynamic: Option<bool>,
    /// Called with a {@link ProgressEvent} as the program is compressed; throwing cancels.
    #[napi(ts_type = "(event: ProgressEvent) => void")]
    pub on_progress: Option<String>,
    /// Aborts adding the program.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<String>,
}

/// What an [`Image`] holds besides the core's builder.
pub struct ImageState {
    /// The base, as given (for messages).
    base: String,
    builder: ImageBuilder,
    layer_options: LayerOptions,
    write_options: WriteOptions,
    /// The program's host path and its path in the image, once added.
    program: Option<(PathBuf, String)>,
    /// The files `addFiles` put in the image, where the program may not go.
    files: BTreeSet<String>,
}

/// An image being composed: a base for one platform, layers on top (files, then the
/// program), config edits, then {@link Image.write} to outputs and registries. A thin wrapper
/// over the core's `ImageBuilder`: nothing is downloaded until needed, and layers are written
/// to temporary files as they are added (deleted with the image). Calls that do I/O return
/// Promises; an image does one such call at a time (the setters throw meanwhile).
///
/// ```js
/// const { Image } = require('zeroimage')
/// const image = await Image.fromBase('builtin:static')
/// await image.addProgram('./hello')
/// image.setEnv('GREETING', 'hi')
/// const result = await image.write({ output: 'hello.tar', tag: 'hello:1.0' })
/// ```
#[napi]
pub struct Image {
    state: Arc<Mutex<Option<ImageState>>>,
}

/// The `Image` tasks.
pub type ImageTask = CoreTask<ImageState, Image>;
/// `addFiles` / `addProgram`.
pub type UnitTask = CoreTask<(), ()>;
/// `image.write`.
pub type ImageWriteTask = CoreTask<BuildResult, BuildResult>;

#[napi]
impl Image {
    /// Resolve `base` (any base `buildImage` takes; default `'scratch'`) for a platform
    /// (default `linux/<this machine's architecture>`): its manifest and config, no layer
    /// bytes yet. The options are those of {@link BuildImageOptions} that say how to reach the
    /// base, which platform, and how layers are written.
    #[napi(
        ts_args_type = "base?: string, options?: Pick<BuildImageOptions, 'platform' | 'os' | 'arch' | 'variant' | 'format' | 'compression' | 'compressionLevel' | 'jobs' | 'sourceDateEpoch' | 'insecure' | 'caCert' | 'creds' | 'timeout' | 'onLog' | 'signal'>",
        ts_return_type = "Promise<Image>"
    )]
    pub fn from_base(env: Env, base: Option<Unknown<'_>>, options: Option<Unknown<'_>>) -> AsyncTask<ImageTask> {
        let mut caller = Caller::new();
        let run = (|| -> zeroimage::Result<Run<ImageState>> {
            let base = match base {
                Some(b) if !matches!(b.get_type().ok(), Some(ValueType::Undefined | ValueType::Null)) => {
                    string_arg(Some(b), "base")?
                }
                _ => "scratch".to_string(),
            };
            let (json, _, log) = read_options(&env, options, true, "{ platform: 'linux/amd64' }", &mut caller)?;
            let hooks = Hooks { log: log.map(|l| caller.logger(l)), ..Hooks::default() };
            Ok(Box::new(move || {
                let mut request = settings(json, &IMAGE_OPTIONS, None, hooks)?;
                request.base = base.parse()?;
                let platform = match request.platform.take() {
                    Some(p) => p,
                    None => Platform::new("linux", std::env::consts::ARCH, None)?,
                };
                let epoch = zeroimage::options::source_date_epoch(request.options.source_date_epoch)?;
                let registry = request.options.registry.clone();
                let mut builder = ImageBuilder::from_base(&request.base, &platform, &registry)?;
                builder.set_created(epoch)?;
                if let Some(format) = request.options.format {
                    builder.set_format(format);
                }
                let layer_options = LayerOptions {
                    format: builder.format(),
                    compression: request.options.compression.clone(),
                    mtime: epoch,
                    ..LayerOptions::default()
                };
                Ok(ImageState {
                    base: request.base.to_string(),
                    builder,
                    layer_options,
                    write_options: WriteOptions { mtime: epoch, registry, ..WriteOptions::default() },
                    program: None,
                    files: BTreeSet::new(),
                })
            }))
        })();
        ImageTask::new(caller, run, |state| Image { state: Arc::new(Mutex::new(Some(state))) })
    }

    /// The platform the image is for, e.g. `'linux/amd64'`.
    #[napi(getter)]
    pub fn platform(&self) -> Result<String> {
        self.with(|s| Ok(s.builder.platform().to_string()))
    }

    /// The media types the image is written with.
    #[napi(getter, ts_return_type = "'oci' | 'docker'")]
    pub fn format(&self) -> Result<String> {
        self.with(|s| Ok(if s.builder.format() == Format::Docker { "docker" } else { "oci" }.to_string()))
    }

    /// How many layers the image has so far, the base's included.
    #[napi(getter)]
    pub fn layer_count(&self) -> Result<u32> {
        self.with(|s| Ok(s.builder.layers().len() as u32))
    }

    /// Add host files and directories in one new layer: `'SRC:DEST'` (as the CLI's `--add`),
    /// `{ src, dest, owner?, followSymlinks? }`, or a list of them. Add files before the
    /// program, so that the program's layer stays on top and its digest does not change when
    /// only the files do.
    #[napi(
        ts_args_type = "add: string | AddItem | Array<string | AddItem>, options?: AddFilesOptions",
        ts_return_type = "Promise<void>"
    )]
    pub fn add_files(&self, env: Env, add: Unknown<'_>, options: Option<Unknown<'_>>) -> AsyncTask<UnitTask> {
        let mut caller = Caller::new();
        let state = Arc::clone(&self.state);
        let run = (|| -> zeroimage::Result<Run<()>> {
            let add = to_json(add, "add", 0)?;
            let (json, progress, _) = read_options(&env, options, true, "{ owner: '65532' }", &mut caller)?;
            let progress = progress.map(|p| caller.progress(p));
            let cancel = caller.cancel.clone();
            Ok(Box::new(move || {
                let mut spec = Map::new();
                spec.insert("add".into(), add);
                for (key, value) in json {
                    let key = match key.as_str() {
                        "owner" => "addOwner",
                        "followSymlinks" => "addFollowSymlinks",
                        _ => {
                            return Err(invalid(
                                "options",
                                &key,
                                "it is not an option here (they are owner, followSymlinks)",
                            ))
                        }
                    };
                    spec.insert(key.into(), value);
                }
                let adds =
                    settings(spec, &["add", "addOwner", "addFollowSymlinks"], None, Hooks::default())?.options.add;
                if adds.is_empty() {
                    return Err(invalid("add", "", "name at least one 'SRC:DEST'"));
                }
                let mut guard = lock(&state)?;
                let s = guard.as_mut().ok_or_else(busy)?;
                let options = LayerOptions { cancel, progress, ..s.layer_options.clone() };
                let program = s.program.as_ref().map_or("", |(_, p)| p.as_str());
                let entries = zeroimage::add::entries_of(&adds, program)?;
                let layer = Layer::from_entries(entries.clone(), &options)?;
                remember(s, &entries);
                let what: Vec<String> = adds.iter().map(ToString::to_string).collect();
                s.builder.append(layer, format!("zeroimage {}: ADD {}", zeroimage::VERSION, what.join(" ")));
                Ok(())
            }))
        })();
        UnitTask::new(caller, run, |()| ())
    }

    /// Add the program (a Linux ELF executable, checked as `buildImage` checks it) in a layer of
    /// its own, at `options.path` (default `/<file name>`), and make it the entrypoint (which
    /// also clears the base's Cmd).
    #[napi(ts_args_type = "program: string, options?: AddProgramOptions", ts_return_type = "Promise<void>")]
    pub fn add_program(&self, env: Env, program: Unknown<'_>, options: Option<Unknown<'_>>) -> AsyncTask<UnitTask> {
        let mut caller = Caller::new();
        let state = Arc::clone(&self.state);
        let run = (|| -> zeroimage::Result<Run<()>> {
            let path = PathBuf::from(string_arg(Some(program), "program")?);
            let (json, progress, _) = read_options(&env, options, true, "{ path: '/app/server' }", &mut caller)?;
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields, rename_all = "camelCase")]
            struct Spec {
                path: Option<String>,
                #[serde(default)]
                allow_dynamic: bool,
            }
            let spec: Spec = serde_json::from_value(Value::Object(json))
                .map_err(|e| invalid("options", "", &e.to_string().replace("`", "")))?;
            let progress = progress.map(|p| caller.progress(p));
            let cancel = caller.cancel.clone();
            Ok(Box::new(move || {
                let mut guard = lock(&state)?;
                let s = guard.as_mut().ok_or_else(busy)?;
                if let Some((_, previous)) = &s.program {
                    return Err(invalid(
                        "program",
                        &path.display().to_string(),
                        &format!("the image already has its program at {previous}; one program per image"),
                    ));
                }
                let in_image = zeroimage::path_in_image(&path, spec.path.as_deref())?;
                if s.files.contains(&in_image) {
                    return Err(invalid("path", &in_image, "addFiles() already put a file there; pick another path"));
                }
                let platform = s.builder.platform().clone();
                let program = Program::open(&path, Some(&platform))?;
                if let Some(interpreter) = program.interpreter() {
                    if !spec.allow_dynamic
                        && !s.builder.has_file(interpreter, &std::env::temp_dir(), &CancelToken::new())?
                    {
                        return Err(zeroimage::Error::DynamicProgram {
                            path: path.clone(),
                            interpreter: interpreter.to_string(),
                            base: s.base.clone(),
                        });
                    }
                }
                let options = LayerOptions { cancel, progress, ..s.layer_options.clone() };
                let layer = Layer::from_entries(vec![program.entry(&in_image)], &options)?;
                let name = program.file_name();
                s.builder.append(layer, format!("zeroimage {}: COPY {name} {in_image}", zeroimage::VERSION));
                s.builder.set_entrypoint([in_image.clone()]);
                s.files.insert(in_image.clone());
                s.program = Some((path, in_image));
                Ok(())
            }))
        })();
        UnitTask::new(caller, run, |()| ())
    }

    /// Set the Entrypoint; the base's Cmd is cleared, as a Dockerfile's ENTRYPOINT does.
    #[napi]
    pub fn set_entrypoint(&self, entrypoint: Vec<String>) -> Result<()> {
        self.with(|s| {
            s.builder.set_entrypoint(entrypoint);
            Ok(())
        })
    }

    /// Set Cmd: the arguments after the entrypoint (an empty list removes it).
    #[napi]
    pub fn set_cmd(&self, cmd: Vec<String>) -> Result<()> {
        self.with(|s| {
            s.builder.set_cmd(cmd);
            Ok(())
        })
    }

    /// Set an environment variable (merged over the base's by name).
    #[napi]
    pub fn set_env(&self, env: Env, key: String, value: String) -> Result<()> {
        self.with(|s| core(&env, s.builder.set_env(&key, &value)))
    }

    /// Set the user to run as: a name, `uid` or `uid:gid`.
    #[napi]
    pub fn set_user(&self, env: Env, user: String) -> Result<()> {
        self.with(|s| core(&env, s.builder.set_user(&user)))
    }

    /// Set the working directory (absolute).
    #[napi]
    pub fn set_workdir(&self, env: Env, workdir: String) -> Result<()> {
        self.with(|s| core(&env, s.builder.set_workdir(&workdir)))
    }

    /// Set a config label.
    #[napi]
    pub fn set_label(&self, env: Env, key: String, value: String) -> Result<()> {
        self.with(|s| core(&env, s.builder.set_label(&key, &value)))
    }

    /// Set a manifest annotation.
    #[napi]
    pub fn set_annotation(&self, env: Env, key: String, value: String) -> Result<()> {
        self.with(|s| core(&env, s.builder.set_annotation(&key, &value)))
    }

    /// Write the image to `output` and push it to `push`, named `tag` in archives and layouts
    /// (as {@link BuildImageOptions} names them; default output `<program file name>.tar`, none
    /// when pushing). The image can be written again, elsewhere.
    #[napi(
        ts_args_type = "options?: Pick<BuildImageOptions, 'output' | 'push' | 'tag' | 'onLog' | 'onProgress' | 'signal'>",
        ts_return_type = "Promise<BuildResult>"
    )]
    pub fn write(&self, env: Env, options: Option<Unknown<'_>>) -> AsyncTask<ImageWriteTask> {
        let mut caller = Caller::new();
        let state = Arc::clone(&self.state);
        let run = (|| -> zeroimage::Result<Run<BuildResult>> {
            let (json, progress, log) = read_options(&env, options, true, "{ output: 'image.tar' }", &mut caller)?;
            let progress = progress.map(|p| caller.progress(p));
            let log = log.map(|l| caller.logger(l));
            let cancel = caller.cancel.clone();
            Ok(Box::new(move || {
                let guard = lock(&state)?;
                let s = guard.as_ref().ok_or_else(busy)?;
                let program = s.program.as_ref().map(|(p, _)| p.to_string_lossy().into_owned());
                let request = settings(json, &["output", "push", "tag"], program, Hooks::default())?;
                let mut registry = s.write_options.registry.clone();
                if log.is_some() {
                    registry.log = log;
                }
                let write = WriteOptions {
                    tags: request.options.tags.clone(),
                    cancel,
                    progress,
                    registry,
                    ..s.write_options.clone()
                };
                let image = s.builder.build()?;
                let written = image.write(&request.sinks, &write)?;
                let images = std::slice::from_ref(&image);
                Ok(BuildResult::new(zeroimage::BuildResult::new(
                    images,
                    None,
                    written,
                    &request.sinks,
                    &write.tags,
                    Vec::new(),
                )))
            }))
        })();
        ImageWriteTask::new(caller, run, |result| result)
    }
}

impl Image {
    /// Run `f` on the state now, or throw when a call is still working on it.
    fn with<T>(&self, f: impl FnOnce(&mut ImageState) -> Result<T>) -> Result<T> {
        let mut guard = self.state.try_lock().map_err(|_| {
            Error::new(Status::GenericFailure, "the image is busy: await the call still working on it first")
        })?;
        let state = guard.as_mut().ok_or_else(|| Error::new(Status::GenericFailure, "the image is gone"))?;
        f(state)
    }
}

/// The state, for a task on the worker thread.
fn lock(state: &Mutex<Option<ImageState>>) -> zeroimage::Result<std::sync::MutexGuard<'_, Option<ImageState>>> {
    Ok(state.lock().unwrap_or_else(|e| e.into_inner()))
}

fn busy() -> zeroimage::Error {
    invalid("image", "", "it is no longer usable")
}

/// A core error thrown from a setter: a JS `Error` with `code`.
fn core<T>(env: &Env, result: zeroimage::Result<T>) -> Result<()> {
    result
        .map(drop)
        .map_err(|e| js_error(env, e.kind().as_str(), &Frontend::Node.spell(&e.report()), None, None::<Unknown<'_>>))
}

/// Note the files a layer put in the image.
fn remember(state: &mut ImageState, entries: &[Entry]) {
    let files = entries.iter().filter(|e| !matches!(e.kind, EntryKind::Dir));
    state.files.extend(files.map(|e| e.path.trim_end_matches('/').to_string()));
}

/// The `runCli` task.
pub struct CliTask {
    args: Vec<String>,
    caller: Caller,
}

impl Task for CliTask {
    type Output = i32;
    type JsValue = i32;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(zeroimage::cli::run_with(std::mem::take(&mut self.args), &self.caller.cancel))
    }

    fn resolve(&mut self, _env: Env, code: i32) -> Result<Self::JsValue> {
        Ok(code)
    }

    fn finally(mut self, env: Env) -> Result<()> {
        self.caller.release(&env)
    }
}

/// Run the `zeroimage` command line with `argv` (the arguments after the program name, e.g.
/// `process.argv.slice(2)`) and resolve to its exit code: 0 on success, 1 when the command
/// fails, 2 for a usage error. Output goes straight to the process's stdout and stderr.
///
/// `signal` cancels a running command the way Ctrl-C does: nothing is written, exit code 1.
#[napi(ts_args_type = "argv: string[], signal?: AbortSignal", ts_return_type = "Promise<number>")]
pub fn run_cli(env: Env, argv: Vec<String>, signal: Option<Unknown<'_>>) -> Result<AsyncTask<CliTask>> {
    let mut caller = Caller::new();
    if let Some(signal) = signal {
        caller.listen(&env, signal)?;
    }
    Ok(AsyncTask::new(CliTask { args: argv, caller }))
}
