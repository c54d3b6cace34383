//! `zeroimage-testbed`: the test bed's helpers for the Python and Node suites.
//!
//! ```text
//! zeroimage-testbed hello DIR
//!     Build the test programs into DIR; print {"static", "dynamic", "arm64",
//!     "riscv64_header", "aarch64_header", "script", "hello_line"} (paths).
//! zeroimage-testbed inspect PATH
//!     Read an OCI archive or layout directory independently; print its facts as JSON.
//!     Exit 1 if it has integrity problems (listed under "problems").
//! zeroimage-testbed validate PATH
//!     oci-image-tool validate --type image (archives are extracted first).
//! zeroimage-testbed runc-run LAYOUT TAG [ARG...]
//!     umoci unpack + runc run; pass the container's stdout, stderr and exit status through.
//! zeroimage-testbed registry [--auth USER:PASSWORD] [--tls]
//! zeroimage-testbed docker
//! zeroimage-testbed podman
//!     Start a private instance, print one JSON line describing it, and keep it running
//!     until stdin reaches EOF (close the pipe, or let the parent die); then stop it.
//! ```

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use zeroimage_tests::program::{self, ElfMachine};
use zeroimage_tests::{oci, DockerDaemon, ImageLayout, Podman, Registry, RegistryOptions, DOCKER_CLIENT};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["hello", dir] => hello(Path::new(dir)),
        ["inspect", path] => inspect(Path::new(path)),
        ["validate", path] => passthrough(&oci::oci_image_tool_validate(Path::new(path))),
        ["runc-run", layout, tag, rest @ ..] => passthrough(&oci::runc_run(Path::new(layout), tag, rest)),
        ["registry", options @ ..] => registry(options),
        ["docker"] => {
            let docker = DockerDaemon::start();
            serve(json!({
                "host": docker.host(),
                "socket": docker.socket(),
                "docker": DOCKER_CLIENT,
                "pid": docker.pid(),
                "log": docker.log_path(),
            }))
        }
        ["podman"] => {
            let podman = Podman::new();
            let cmd = podman.command();
            let run_options: Vec<&str> = ["--rm", "--network", "none"].into_iter().chain(Podman::ULIMITS).collect();
            serve(json!({
                "argv": std::iter::once(cmd.get_program())
                    .chain(cmd.get_args())
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect::<Vec<_>>(),
                "run_options": run_options,
                "env": cmd
                    .get_envs()
                    .filter_map(|(key, value)| Some((key.to_string_lossy().into_owned(), value?.to_string_lossy().into_owned())))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            }))
        }
        _ => {
            eprintln!("{}", USAGE);
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: zeroimage-testbed hello DIR | inspect PATH | validate PATH | \
                     runc-run LAYOUT TAG [ARG...] | registry [--auth USER:PASSWORD] [--tls] | \
                     docker | podman";

fn hello(dir: &Path) -> ExitCode {
    std::fs::create_dir_all(dir).expect("cannot create the output directory");
    print_json(&json!({
        "static": program::static_hello(dir),
        "dynamic": program::dynamic_hello(dir),
        "arm64": program::static_hello_arm64(dir),
        "riscv64_header": program::tiny_elf(&dir.join("riscv64-header"), ElfMachine::Riscv64),
        "aarch64_header": program::tiny_elf(&dir.join("aarch64-header"), ElfMachine::Aarch64),
        "script": program::shell_script(dir),
        "hello_line": program::HELLO_LINE,
    }));
    ExitCode::SUCCESS
}

fn inspect(path: &Path) -> ExitCode {
    let read = if path.is_dir() { ImageLayout::read_dir(path) } else { ImageLayout::read(path) };
    match read {
        Ok(layout) => {
            print_json(&layout.to_json());
            if layout.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("cannot read {}: {err}", path.display());
            ExitCode::from(1)
        }
    }
}

fn registry(options: &[&str]) -> ExitCode {
    let mut opts = RegistryOptions::default();
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        match *option {
            "--tls" => opts = opts.tls(),
            "--auth" => {
                let Some((user, password)) = rest.next().and_then(|v| v.split_once(':')) else {
                    eprintln!("--auth needs USER:PASSWORD");
                    return ExitCode::from(2);
                };
                opts = opts.auth(user, password);
            }
            other => {
                eprintln!("unknown option {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let registry = Registry::start_with(opts);
    serve(json!({
        "addr": registry.addr(),
        "url": registry.url(),
        "ca_cert": registry.ca_cert(),
        "cert_dir": registry.cert_dir(),
        "username": registry.credentials().map(|(user, _)| user),
        "password": registry.credentials().map(|(_, password)| password),
        "flags": registry.flags(),
        "src_flags": registry.src_flags(),
        "dest_flags": registry.dest_flags(),
        "log": registry.log_path(),
        "storage": registry.storage_dir(),
        "pid": registry.pid(),
    }))
    // `registry` is dropped after `serve` returns: stopped by PID.
}

/// Prints `info` as one line, then blocks until stdin reaches EOF.
fn serve(info: serde_json::Value) -> ExitCode {
    print_json(&info);
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    ExitCode::SUCCESS
}

fn print_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value).expect("cannot write to stdout");
    stdout.write_all(b"\n").expect("cannot write to stdout");
    stdout.flush().expect("cannot flush stdout");
}

fn passthrough(output: &std::process::Output) -> ExitCode {
    let _ = std::io::stdout().write_all(&output.stdout);
    let _ = std::io::stderr().write_all(&output.stderr);
    match output.status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(128),
    }
}
