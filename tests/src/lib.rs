//! The zeroimage test bed: support code for end-to-end tests against real tools.
//!
//! Every suite (the Rust tests here, and through the `zeroimage-testbed` binary the Python
//! and Node suites) checks zeroimage's images with tools zeroimage did not write:
//!
//! - [`program`]: the `hello` test program (static, dynamic, arm64) and foreign ELF headers;
//! - [`DockerDaemon`]: a private dockerd 20.10 (`docker load`, `docker run`);
//! - [`Registry`]: a private distribution registry, optionally with Basic auth and TLS;
//! - [`Podman`]: podman with private storage;
//! - [`oci`]: skopeo, umoci + runc, oci-image-tool;
//! - [`handmade`]: images written by hand from tar + JSON, for fixtures no tool would make;
//! - [`ImageLayout`]: an independent reader of OCI archives and layouts that checks every
//!   digest itself;
//! - [`process`]: running tools with timeouts, and owning daemons.
//!
//! Rules every helper follows: only loopback addresses and free ports; private
//! directories and sockets per instance; stop exactly the processes started, by PID;
//! a missing tool fails the test (never skips) with
//! "X is not installed: run scripts/install-test-deps.sh".
//!
//! ```no_run
//! use zeroimage_tests::{exec, oci, program, zeroimage_cmd, ImageLayout, OutputExt};
//! let dir = tempfile::tempdir().unwrap();
//! let hello = program::static_hello(dir.path());
//! let archive = dir.path().join("hello.tar");
//! exec(zeroimage_cmd().arg("build").arg(&hello).arg("-o").arg(&archive))
//!     .assert_success("zeroimage build");
//! let layout = ImageLayout::open(&archive);
//! assert_eq!(layout.image().platform(), "linux/amd64");
//! let unpacked = dir.path().join("layout");
//! oci::oci_archive_to_layout(&archive, &unpacked, "latest");
//! let out = oci::runc_run(&unpacked, "latest", &[]);
//! assert_eq!(out.stdout_text(), "hello from zeroimage\n");
//! ```

pub mod archive;
pub mod containerd;
pub mod docker;
pub mod handmade;
pub mod oci;
pub mod podman;
pub mod process;
pub mod program;
pub mod proxy;
pub mod registry;
pub mod token;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use archive::{sha256_digest, sha256_file, EntryKind, Image, ImageLayout, Layer, TarEntry};
pub use containerd::Containerd;
pub use docker::{DockerDaemon, DOCKER_CLIENT};
pub use oci::{
    oci_archive_to_layout, oci_image_tool_validate, runc_run, runc_run_with, skopeo_inspect, skopeo_inspect_config,
    skopeo_inspect_raw,
};
pub use podman::Podman;
pub use process::{exec, exec_ok, require_tool, scratch_dir, Daemon, OutputExt};
pub use program::{dynamic_hello, static_hello, static_hello_arm64, tiny_elf, ElfMachine, HELLO_LINE};
pub use registry::{Registry, RegistryOptions, RegistryRequest};

/// The `zeroimage` CLI binary under test.
///
/// `$ZEROIMAGE_BIN` when set (used as is). Otherwise `zeroimage` in the cargo target
/// directory of the running executable (`target/<profile>/deps/test-…` →
/// `target/<profile>/zeroimage`), brought up to date first, once per process, with
/// `cargo build -p zeroimage --bin zeroimage` in the same profile: `cargo test -p
/// zeroimage-tests` builds only the `zeroimage` library, and a stale binary would be
/// tested silently. Panics with cargo's output if the build fails, or with advice if the
/// binary is missing.
pub fn zeroimage_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("ZEROIMAGE_BIN") {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "ZEROIMAGE_BIN={} does not exist", path.display());
            return path;
        }
        let exe = std::env::current_exe().expect("cannot locate the running executable");
        let path = zeroimage_bin_near(&exe);
        build_zeroimage(&path);
        assert!(
            path.is_file(),
            "the zeroimage binary is missing at {}: build it with `cargo build -p zeroimage` \
             (same profile as the tests), or set ZEROIMAGE_BIN",
            path.display()
        );
        path
    })
    .clone()
}

/// Runs `cargo build -p zeroimage --bin zeroimage` for the profile and target directory
/// `bin` lives in (`<target>/<profile>/zeroimage`); does nothing outside a cargo layout.
fn build_zeroimage(bin: &Path) {
    let Some(profile_dir) = bin.parent() else { return };
    let Some(target_dir) = profile_dir.parent() else { return };
    let Some(profile) = profile_dir.file_name().and_then(OsStr::to_str) else { return };
    if !target_dir.join("CACHEDIR.TAG").exists() && !profile_dir.join("deps").is_dir() {
        return; // not a cargo target directory
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "zeroimage", "--bin", "zeroimage", "--manifest-path", workspace])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    exec_ok(&mut cmd);
}

/// Where the `zeroimage` binary sits for an executable at `exe`: `target/<profile>/deps/x`
/// (a test) or `target/<profile>/x` (a binary such as `zeroimage-testbed`) both give
/// `target/<profile>/zeroimage`.
pub fn zeroimage_bin_near(exe: &Path) -> PathBuf {
    let mut dir = exe.parent().unwrap_or(Path::new("."));
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir = dir.parent().unwrap_or(dir);
    }
    dir.join("zeroimage")
}

/// A command running the `zeroimage` CLI ([`zeroimage_bin`]).
pub fn zeroimage_cmd() -> Command {
    Command::new(zeroimage_bin())
}

/// Runs `zeroimage ARGS…` with [`exec`]: the outcome, whatever it is.
pub fn zeroimage<S: AsRef<OsStr>>(args: &[S]) -> Output {
    exec(zeroimage_cmd().args(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binary_next_to_deps() {
        assert_eq!(
            zeroimage_bin_near(Path::new("/w/target/debug/deps/testbed-123")),
            Path::new("/w/target/debug/zeroimage")
        );
        assert_eq!(
            zeroimage_bin_near(Path::new("/w/target/release/zeroimage-testbed")),
            Path::new("/w/target/release/zeroimage")
        );
    }
}
