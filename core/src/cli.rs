//! The command line, shared by the `zeroimage` binary, the Python console script and the
//! Node `bin`: [`run`] takes the arguments after the program name and returns the exit code.

use crate::build::{build_image, parse_key_value, BuildOptions, BuildResult, Progress, Stage};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::layer::{Algorithm as CompressionAlgorithm, Compression};
use crate::platform::Platform;
use crate::{write_base, Base, BaseOptions, Builtin, Format, Sink};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Build container images for single-binary programs, without Docker.
#[derive(Debug, Parser)]
#[command(name = "zeroimage", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Build an image: FROM <base>, COPY <program> /<program>, ENTRYPOINT ["/<program>"]
    Build(BuildArgs),
    /// Write a base image on its own (e.g. builtin:static, for docker load or a Dockerfile's FROM), or --list the built-in bases
    Base(BaseArgs),
    /// Log in to a registry: check the credentials, then store them as docker login does
    Login(LoginArgs),
    /// Log out of a registry: erase its stored credentials
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zeroimage login registry.example.com -u me --password-stdin < token.txt\n\nCredentials go to the credential helper docker's config.json names for the registry\n(credHelpers, credsStore), else to its auths ($DOCKER_CONFIG/config.json, default ~/.docker/config.json)."
)]
struct LoginArgs {
    /// The registry host, e.g. registry.example.com or localhost:5000 (docker.io for Docker Hub)
    registry: String,

    /// User name
    #[arg(short, long, value_name = "USER")]
    username: String,

    /// Password or access token (insecure: it shows in the process list; prefer --password-stdin)
    #[arg(short, long, value_name = "PASSWORD", conflicts_with = "password_stdin", hide_env_values = true)]
    password: Option<String>,

    /// Read the password or access token from stdin
    #[arg(long)]
    password_stdin: bool,

    /// Allow plain HTTP and unverified TLS (loopback registries may always use HTTP)
    #[arg(long)]
    insecure: bool,

    /// Trust the CA certificates in this PEM file (repeatable)
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<PathBuf>,

    /// Say what happens
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
struct LogoutArgs {
    /// The registry host, e.g. registry.example.com or localhost:5000
    registry: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zeroimage base --list\n  zeroimage base builtin:static -o static.tar\n  zeroimage base builtin:static --platform linux/arm64 -o oci:./layout-dir"
)]
struct BaseArgs {
    /// The base to write, e.g. builtin:static
    #[arg(value_name = "BASE", required_unless_present = "list", conflicts_with = "list")]
    base: Option<String>,

    /// List the built-in bases and their contents
    #[arg(long)]
    list: bool,

    /// Output: PATH or oci-archive:PATH (an OCI archive that docker load also reads), or oci:DIR[:TAG] [default: <builtin name>.tar]
    #[arg(short, long, value_name = "OUTPUT")]
    output: Option<String>,

    /// Name the image (repeatable) [default: zeroimage-builtin-<name>:<zeroimage version>]
    #[arg(short, long = "tag", value_name = "NAME")]
    tags: Vec<String>,

    /// Platform os/arch[/variant] the config declares [default: linux/<this machine's architecture>]
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,

    /// Media types of a push (-o docker://REF): oci or docker; archives and oci: layouts are always OCI [default: oci]
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,

    /// Add a manifest annotation (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotation: Vec<String>,

    /// Print the result (or the --list) as JSON on stdout
    #[arg(long)]
    json: bool,

    /// Print nothing but errors (and the digest or JSON on stdout)
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zeroimage build ./hello\n  zeroimage build ./hello -o out.tar --tag registry.example.com/hello:1.0\n  zeroimage build ./hello --output oci:./layout-dir\n  zeroimage build ./hello --env K=V --user 65532 -- --flag arg"
)]
struct BuildArgs {
    /// The program to package (a Linux ELF executable; static for scratch images)
    program: PathBuf,

    /// Arguments to pass to the program: the image's Cmd
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,

    /// Base image: scratch, REF or docker://REF (a registry), oci-archive:PATH[:NAME], oci:DIR[:NAME], docker-archive:PATH[:NAME]
    #[arg(long, value_name = "BASE", default_value = "scratch")]
    from: String,

    /// Base image from an OCI archive (the same as --from oci-archive:PATH)
    #[arg(long, value_name = "PATH", conflicts_with = "from")]
    from_archive: Option<PathBuf>,

    /// Allow plain HTTP and unverified TLS for registries (loopback registries may always use HTTP)
    #[arg(long)]
    insecure: bool,

    /// Trust the CA certificates in this PEM file for registries (repeatable)
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<PathBuf>,

    /// Registry credentials USER:PASSWORD [default: stored by zeroimage/docker/podman login, else anonymous]
    #[arg(long, value_name = "USER:PASSWORD", hide_env_values = true)]
    creds: Option<String>,

    /// Push the image to a registry, REF or docker://REF (repeatable: blobs go up once, then every tag); prints REF@DIGEST for each
    #[arg(long = "push", value_name = "REF")]
    push: Vec<String>,

    /// Seconds a registry request may make no progress before it is abandoned
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,

    /// Say what happens with registries (where credentials come from, mounts, uploads, retries); never prints a secret
    #[arg(short, long)]
    verbose: bool,

    /// Output: PATH or oci-archive:PATH (an OCI archive that docker load also reads), oci:DIR[:TAG], docker-daemon:NAME[:TAG] or docker://REF [default: <program>.tar, none with --push]
    #[arg(short, long, value_name = "OUTPUT")]
    output: Option<String>,

    /// Name the image (repeatable): written to the archive for docker load, podman, containerd
    #[arg(short, long = "tag", value_name = "NAME")]
    tags: Vec<String>,

    /// Target platform os/arch[/variant] [default: the program's architecture]
    #[arg(long, value_name = "PLATFORM", conflicts_with_all = ["os", "arch", "variant"])]
    platform: Option<String>,

    /// Target operating system (with --arch)
    #[arg(long, value_name = "OS")]
    os: Option<String>,

    /// Target architecture
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,

    /// Target architecture variant (with --arch)
    #[arg(long, value_name = "VARIANT", requires = "arch")]
    variant: Option<String>,

    /// Path of the program inside the image [default: /<program file name>]
    #[arg(long, value_name = "PATH")]
    path: Option<String>,

    /// Set an environment variable (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// Working directory
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,

    /// User to run as: name, uid or uid:gid
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,

    /// Add a config label (repeatable)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,

    /// Add a manifest annotation (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotation: Vec<String>,

    /// Build a dynamically linked program even if the base lacks its loader
    #[arg(long)]
    allow_dynamic: bool,

    /// Media types of a push (--push): oci or docker; archives and oci: layouts are always OCI [default: follow the base]
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,

    /// Check the image against a platform's rules before writing anything, listing every violation: lambda (AWS Lambda container images)
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,

    /// Layer compression: gzip, zstd (smaller, faster; Docker 20.10 and AWS Lambda cannot read it) or none
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    compression: String,

    /// Compression level: gzip 0-9 [default: 6], zstd 1-19 [default: 3]
    #[arg(long, value_name = "LEVEL")]
    compression_level: Option<u32>,

    /// Threads to compress with [default: the number of cores]; the output is the same whatever it is
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,

    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,

    /// Print nothing but errors (and the digest or JSON on stdout)
    #[arg(short, long)]
    quiet: bool,
}

/// Run the CLI with `args` (without the program name) and return the exit code:
/// 0 on success, 1 when the build fails, 2 for a usage error.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(args, &CancelToken::new())
}

/// [`run`], with a token that cancels the running command (the binary sets it on Ctrl-C).
pub fn run_with<I, T>(args: I, cancel: &CancelToken) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = std::iter::once(OsString::from("zeroimage")).chain(args.into_iter().map(Into::into));
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Build(args) => build(args, cancel),
        Command::Base(args) => base(args, cancel),
        Command::Login(args) => login(args),
        Command::Logout(args) => logout(args),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {}", err.report());
            1
        }
    }
}

fn build(args: BuildArgs, cancel: &CancelToken) -> Result<()> {
    let base: Base = match &args.from_archive {
        Some(path) => Base::OciArchive { path: path.clone(), tag: None },
        None => args.from.parse()?,
    };
    let credentials: Option<crate::Credentials> = args.creds.as_deref().map(str::parse).transpose()?;
    let log = args.verbose.then(stderr_logger);
    if let (Some(log), Some(creds)) = (&log, &credentials) {
        log.log(&format!("credentials: user {} from --creds", creds.username().unwrap_or("?")));
    }
    let registry = crate::RegistryOptions {
        insecure: args.insecure,
        ca_certs: args.ca_certs.clone(),
        credentials,
        timeout: Some(std::time::Duration::from_secs(args.timeout.max(1))),
        log,
        ..Default::default()
    };
    let platform = match (&args.platform, &args.arch) {
        (Some(p), _) => Some(p.parse::<Platform>()?),
        (None, Some(arch)) => {
            Some(Platform::new(args.os.as_deref().unwrap_or("linux"), arch, args.variant.as_deref())?)
        }
        (None, None) => match &args.os {
            Some(os) => {
                return Err(Error::InvalidPlatform {
                    input: os.clone(),
                    reason: "--os needs --arch (or use --platform os/arch)".into(),
                })
            }
            None => None,
        },
    };
    let sinks = Sink::for_build(&args.program, args.output.as_deref(), &args.push)?;
    let compression = compression(&args)?;
    let mut options = BuildOptions {
        path: args.path,
        args: args.args,
        workdir: args.workdir,
        user: args.user,
        allow_dynamic: args.allow_dynamic,
        format: args.format.as_deref().map(str::parse::<Format>).transpose()?,
        profile: args.profile.as_deref().map(str::parse::<crate::lambda::Profile>).transpose()?,
        compression,
        cancel: cancel.clone(),
        registry,
        ..BuildOptions::default()
    };
    for tag in &args.tags {
        options.tags.push(tag.parse()?);
    }
    for kv in &args.env {
        options.env.push(parse_key_value("env", kv)?);
    }
    options.labels = key_values("label", &args.label)?;
    options.annotations = key_values("annotation", &args.annotation)?;
    let show_progress = !args.quiet && !args.json && std::io::stderr().is_terminal();
    if show_progress {
        options.progress = Some(progress_renderer());
    }

    let result = build_image(&base, &args.program, platform.as_ref(), &sinks, &options);
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let result = result?;
    if args.json {
        println!("{}", result_json(&result));
    } else if !result.pushed.is_empty() {
        for line in &result.pushed {
            println!("{line}");
        }
        if !args.quiet {
            eprint!("{}", wrote_text(&result));
        }
    } else {
        println!("{}", result.digest);
        if !args.quiet {
            eprint!("{}", wrote_text(&result));
        }
    }
    Ok(())
}

fn compression(args: &BuildArgs) -> Result<Compression> {
    let algorithm: CompressionAlgorithm = args.compression.parse()?;
    if algorithm == CompressionAlgorithm::Zstd && !args.quiet && !args.json {
        eprintln!("warning: zstd layers need a recent runtime: Docker 20.10, umoci and AWS Lambda only read gzip");
    }
    Compression::from_options(&args.compression, args.compression_level, args.jobs)
}

fn login(args: LoginArgs) -> Result<()> {
    let password = match (&args.password, args.password_stdin) {
        (Some(password), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            password.clone()
        }
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Error::io("read the password from", "stdin", e))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Error::InvalidOption {
                option: "password",
                value: String::new(),
                reason: "pass --password-stdin (and the password on stdin), or -p PASSWORD".into(),
            })
        }
    };
    let options = crate::RegistryOptions {
        insecure: args.insecure,
        ca_certs: args.ca_certs,
        log: args.verbose.then(stderr_logger),
        ..Default::default()
    };
    let source = crate::registry::login(&args.registry, &args.username, &password, &options)?;
    if args.verbose {
        eprintln!("credentials stored in {source}");
    }
    println!("Login Succeeded");
    Ok(())
}

fn logout(args: LogoutArgs) -> Result<()> {
    if crate::registry::logout(&args.registry)? {
        println!("Removing login credentials for {}", args.registry);
    } else {
        eprintln!("Not logged in to {}", args.registry);
    }
    Ok(())
}

/// `--verbose`: registry log lines on stderr.
fn stderr_logger() -> crate::registry::Logger {
    let clear = if std::io::stderr().is_terminal() { "\r\x1b[2K" } else { "" };
    crate::registry::Logger::new(move |line| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{clear}{line}");
    })
}

fn base(args: BaseArgs, cancel: &CancelToken) -> Result<()> {
    if args.list {
        if args.json {
            println!("{}", builtins_json());
        } else {
            print!("{}", builtins_text());
        }
        return Ok(());
    }
    let base: Base = args.base.as_deref().unwrap_or_default().parse()?;
    let platform = args.platform.as_deref().map(str::parse::<Platform>).transpose()?;
    let sink = Sink::for_base(&base, args.output.as_deref())?;
    let mut options = BaseOptions {
        format: args.format.as_deref().map(str::parse::<Format>).transpose()?,
        annotations: key_values("annotation", &args.annotation)?,
        cancel: cancel.clone(),
        ..BaseOptions::default()
    };
    for tag in &args.tags {
        options.tags.push(tag.parse()?);
    }
    let result = write_base(&base, platform.as_ref(), &[sink], &options)?;
    if args.json {
        println!("{}", result_json(&result));
    } else {
        println!("{}", result.digest);
        if !args.quiet {
            eprint!("{}", wrote_text(&result));
        }
    }
    Ok(())
}

/// `zeroimage base --list`: each built-in, its config and its contents.
fn builtins_text() -> String {
    let mut out = String::new();
    for builtin in Builtin::ALL {
        out.push_str(&format!("{builtin}  {}\n", builtin.description()));
        out.push_str(&format!("  User  {}\n", builtin.user()));
        for env in builtin.env() {
            out.push_str(&format!("  Env   {env}\n"));
        }
        for (key, value) in builtin.labels() {
            out.push_str(&format!("  Label {key}={value}\n"));
        }
        for item in builtin.contents() {
            let mode = format!("{:04o} {}:{}", item.mode, item.uid, item.gid);
            out.push_str(&format!("  {:<36} {mode:<17} {}\n", item.path, item.summary));
        }
    }
    out
}

/// `zeroimage base --list --json`.
fn builtins_json() -> String {
    let builtins: Vec<serde_json::Value> = Builtin::ALL
        .iter()
        .map(|b| {
            serde_json::json!({
                "name": b.to_string(),
                "description": b.description(),
                "user": b.user(),
                "env": b.env(),
                "labels": b.labels(),
                "contents": b.contents().iter().map(|i| serde_json::json!({
                    "path": i.path, "mode": i.mode, "uid": i.uid, "gid": i.gid, "summary": i.summary,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    String::from_utf8(crate::image::canonical_json(&serde_json::json!(builtins))).expect("JSON is UTF-8")
}

fn key_values(option: &'static str, items: &[String]) -> Result<BTreeMap<String, String>> {
    items.iter().map(|kv| parse_key_value(option, kv)).collect()
}

/// `wrote OUTPUTS (PLATFORM, SIZE)`, and when the outputs hold different manifests (an OCI
/// archive and a Docker-format push), which digest each one holds.
fn wrote_text(result: &BuildResult) -> String {
    let mut out = format!("wrote {} ({}, {})\n", result.outputs.join(", "), result.platform, human_size(result.size));
    if result.digests.iter().any(|d| *d != result.digest) {
        for (output, digest) in result.outputs.iter().zip(&result.digests) {
            out.push_str(&format!("  {output}: {digest}\n"));
        }
    }
    out
}

/// The `--json` document: `{"digest", "config_digest", "size", "platform", "output", ...}`;
/// `digests` maps each output to the manifest digest it holds.
pub fn result_json(result: &BuildResult) -> String {
    let value = serde_json::json!({
        "digest": result.digest,
        "config_digest": result.config_digest,
        "size": result.size,
        "platform": result.platform.to_string(),
        "output": result.outputs.first(),
        "outputs": result.outputs,
        "digests": result.outputs.iter().zip(&result.digests).map(|(o, d)| (o.clone(), serde_json::Value::from(d.clone()))).collect::<serde_json::Map<_, _>>(),
        "tags": result.tags,
        "pushed": result.pushed,
    });
    String::from_utf8(crate::image::canonical_json(&value)).expect("JSON is UTF-8")
}

fn progress_renderer() -> crate::ProgressFn {
    let last = Mutex::new((Stage::Layer, u64::MAX));
    Arc::new(move |p: &Progress| {
        let Some(total) = p.total.filter(|t| *t > 0) else { return };
        let percent = p.current.saturating_mul(100) / total;
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if *last == (p.stage, percent) {
            return;
        }
        *last = (p.stage, percent);
        let verb = match p.stage {
            Stage::Layer => "compressing",
            Stage::Write => "writing",
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{verb} {percent:>3}% of {}", human_size(total));
        let _ = err.flush();
    })
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run(["build"]), 2);
        assert_eq!(run(["frobnicate"]), 2);
        assert_eq!(run(["--help"]), 0);
        assert_eq!(run(["base"]), 2, "a base or --list is required");
        assert_eq!(run(["base", "--list", "builtin:static"]), 2);
    }

    #[test]
    fn lists_builtins() {
        let text = builtins_text();
        assert!(text.starts_with("builtin:static  "), "{text}");
        assert!(text.contains("/etc/ssl/certs/ca-certificates.crt"), "{text}");
        assert!(text.contains("/tmp/                                1777 0:0"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&builtins_json()).unwrap();
        assert_eq!(json[0]["name"], "builtin:static");
        assert_eq!(json[0]["user"], "65532:65532");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
