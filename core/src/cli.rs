//! The command line, shared by the `zeroimage` binary, the Python console script and the
//! Node `bin`: [`run`] takes the arguments after the program name and returns the exit code.

use crate::build::BuildResult;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::options::parse_key_value;
use crate::platform::Platform;
use crate::progress::{Progress, Stage};
use crate::{write_base, Base, BaseOptions, Builtin, Format, Sink};
use clap::{Args, CommandFactory, Parser, Subcommand};
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
    /// Print a shell completion script (bash, zsh or fish) on stdout
    Completion(CompletionArgs),
}

impl Command {
    /// Whether this command was asked for `--json` output (its failures are JSON too).
    fn json(&self) -> bool {
        match self {
            Command::Build(args) => args.json,
            Command::Base(args) => args.json,
            Command::Login(_) | Command::Logout(_) | Command::Completion(_) => false,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zeroimage completion bash > ~/.local/share/bash-completion/completions/zeroimage\n  zeroimage completion zsh > ~/.zfunc/_zeroimage      (with fpath+=(~/.zfunc) before compinit)\n  zeroimage completion fish > ~/.config/fish/completions/zeroimage.fish"
)]
struct CompletionArgs {
    /// The shell to complete in
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
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

    /// Manifest and config media types: oci or docker [default: oci]
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
    after_help = "Examples:\n  zeroimage build ./hello\n  zeroimage build ./server --from builtin:static --add ./static:/srv/static\n  zeroimage build ./hello -o out.tar --tag registry.example.com/hello:1.0\n  zeroimage build ./hello --output oci:./layout-dir\n  zeroimage build ./hello --env K=V --user 65532 -- --flag arg"
)]
struct BuildArgs {
    #[command(flatten)]
    spec: crate::BuildSpec,

    /// Say what happens with registries (where credentials come from, mounts, uploads, retries); never prints a secret
    #[arg(short, long)]
    verbose: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,

    /// Print nothing but errors (and the digest or JSON on stdout)
    #[arg(short, long)]
    quiet: bool,
}

/// Run the CLI with `args` (without the program name) and return the exit code:
/// 0 on success, 1 when the build fails, 2 for a usage error.
///
/// With `--json`, a failure is JSON on stdout too ([`error_json`]), with the same exit code.
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
    let argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(std::iter::once(OsString::from("zeroimage")).chain(argv.iter().cloned())) {
        Ok(cli) => cli,
        Err(err) => {
            // A value the core's parser refused (`--env NOEQUALS`, `--add relative`) is a bad
            // input like any other (exit 1, one `error:` line); the rest are usage errors.
            if err.kind() == clap::error::ErrorKind::ValueValidation {
                if let Some(source) = std::error::Error::source(&err) {
                    if asks_for_json(&argv) {
                        let message = source.to_string();
                        println!("{}", failure_json(crate::ErrorKind::InvalidInput.as_str(), &message, None));
                    }
                    eprintln!("error: {source}");
                    return 1;
                }
            }
            if err.use_stderr() && asks_for_json(&argv) {
                println!("{}", usage_error_json(&err));
            }
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    let json = cli.command.json();
    let result = match cli.command {
        Command::Build(args) => build(args, cancel),
        Command::Base(args) => base(args, cancel),
        Command::Login(args) => login(args),
        Command::Logout(args) => logout(args),
        Command::Completion(args) => completion(args),
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            if json {
                println!("{}", error_json(&err));
            }
            eprintln!("error: {}", err.report());
            1
        }
    }
}

/// `--json` among the options (before a `--`), for usage errors that stop the parse.
fn asks_for_json(argv: &[OsString]) -> bool {
    argv.iter().take_while(|a| *a != "--").any(|a| a == "--json")
}

/// The `--json` document of a failure: `{"error": {"kind", "message", "hint"}}`, where `kind`
/// is the [`ErrorKind`](crate::ErrorKind) name, `message` the error and its causes, and `hint`
/// what to do about it (or null).
pub fn error_json(err: &Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    failure_json(err.kind().as_str(), &message, err.hint().as_deref())
}

/// A usage error as JSON: kind `invalid_input`, clap's message, its tip (or where help is).
fn usage_error_json(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut blocks = text.split("\n\n").map(str::trim);
    let message = blocks.next().unwrap_or_default().trim_start_matches("error: ").to_string();
    let rest: Vec<&str> = blocks.collect();
    let hint = rest
        .iter()
        .find_map(|b| b.strip_prefix("tip: "))
        .or_else(|| rest.iter().copied().find(|b| b.starts_with("For more information")));
    failure_json(crate::ErrorKind::InvalidInput.as_str(), &message, hint)
}

fn failure_json(kind: &str, message: &str, hint: Option<&str>) -> String {
    let value = serde_json::json!({"error": {"kind": kind, "message": message, "hint": hint}});
    String::from_utf8(crate::image::canonical_json(&value)).expect("JSON is UTF-8")
}

fn completion(args: CompletionArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "zeroimage", &mut script);
    std::io::stdout().write_all(&script).map_err(|e| Error::io("write the completion script to", "stdout", e))
}

fn build(args: BuildArgs, cancel: &CancelToken) -> Result<()> {
    if args.spec.compression.as_deref() == Some("zstd") && !args.quiet && !args.json {
        eprintln!("warning: zstd layers need a recent runtime: Docker 20.10, umoci and AWS Lambda only read gzip");
    }
    let show_progress = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let hooks = crate::Hooks {
        cancel: cancel.clone(),
        progress: show_progress.then(progress_renderer),
        log: args.verbose.then(stderr_logger),
    };
    let request = args.spec.into_request(hooks)?;
    let result = request.run();
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let result = result?;
    if let (Some(bundle), false) = (&result.bundled, args.quiet || args.json) {
        for note in &bundle.notes {
            eprintln!("note: {note}");
        }
        if !bundle.is_empty() {
            eprintln!(
                "bundled {} shared libraries ({}) from {}",
                bundle.libraries.len(),
                human_size(bundle.size()),
                bundle.sysroot.display()
            );
        }
    }
    // Outputs of one build can hold different digests (archives are OCI; a push keeps the
    // base's format): say which is which.
    if !args.json && !args.quiet && result.written.iter().any(|w| w.digest != result.digest) {
        for written in &result.written {
            eprintln!("  {}: {}", written.output, written.digest);
        }
    }
    if !args.json && !args.quiet && result.index_digest.is_some() {
        for manifest in &result.manifests {
            eprintln!("{} {}", manifest.platform, manifest.digest);
        }
    }
    if args.json {
        println!("{}", result_json(&result));
    } else if !result.pushed.is_empty() {
        for line in &result.pushed {
            println!("{line}");
        }
        if !args.quiet {
            eprintln!("wrote {} ({}, {})", result.outputs.join(", "), result.platform, human_size(result.size));
        }
    } else {
        println!("{}", result.digest);
        if !args.quiet {
            eprintln!("wrote {} ({}, {})", result.outputs.join(", "), result.platform, human_size(result.size));
        }
    }
    Ok(())
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
            eprintln!("wrote {} ({}, {})", result.outputs.join(", "), result.platform, human_size(result.size));
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

/// The `--json` document: `{"digest", "config_digest", "size", "platform", "output", "outputs",
/// "tags", "pushed", "index_digest", "manifests": [{"platform", "digest"}], "written":
/// [{"output", "digest"}]}`.
pub fn result_json(result: &BuildResult) -> String {
    let value = serde_json::json!({
        "digest": result.digest,
        "config_digest": result.config_digest,
        "size": result.size,
        "platform": result.platform.to_string(),
        "output": result.outputs.first(),
        "outputs": result.outputs,
        "tags": result.tags,
        "pushed": result.pushed,
        "bundled": result.bundled.as_ref().map(|b| serde_json::json!({
            "sysroot": b.sysroot,
            "interpreter": b.interpreter,
            "libraries": b.libraries,
            "symlinks": b.symlinks.iter().map(|(path, target)| serde_json::json!({"path": path, "target": target})).collect::<Vec<_>>(),
            "notes": b.notes,
        })),
        "index_digest": result.index_digest,
        "manifests": result.manifests.iter().map(|m| serde_json::json!({
            "platform": m.platform.to_string(), "digest": m.digest,
        })).collect::<Vec<_>>(),
        "written": result.written.iter().map(|w| serde_json::json!({
            "output": w.output, "digest": w.digest,
        })).collect::<Vec<_>>(),
        "digests": result.written.iter().map(|w| (w.output.clone(), serde_json::json!(w.digest))).collect::<serde_json::Map<_, _>>(),
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
    fn failures_as_json() {
        let err = Error::InvalidPlatform { input: "linux".into(), reason: "no architecture".into() };
        let json: serde_json::Value = serde_json::from_str(&error_json(&err)).unwrap();
        assert_eq!(json["error"]["kind"], "invalid_input");
        assert_eq!(json["error"]["message"], err.to_string());
        assert_eq!(json["error"]["hint"], err.hint().unwrap());

        let err = Cli::try_parse_from(["zeroimage", "build", "p", "--json", "--bogus"]).unwrap_err();
        let json: serde_json::Value = serde_json::from_str(&usage_error_json(&err)).unwrap();
        assert_eq!(json["error"]["kind"], "invalid_input");
        assert_eq!(json["error"]["message"], "unexpected argument '--bogus' found");
        assert!(json["error"]["hint"].as_str().unwrap().contains("--bogus"), "{json}");

        let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(asks_for_json(&argv(&["build", "--json", "--bogus"])));
        assert!(!asks_for_json(&argv(&["build", "p", "--", "--json"])));
    }

    #[test]
    fn build_help_names_the_builtin_base() {
        let help = Cli::command().find_subcommand_mut("build").unwrap().render_long_help().to_string();
        assert!(help.contains("builtin:static"), "{help}");
    }

    #[test]
    fn completion_scripts() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "zeroimage", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("allow-dynamic") && script.contains("completion"), "{shell}: {script}");
        }
        assert_eq!(run(["completion", "tcsh"]), 2);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
