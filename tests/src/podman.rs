//! podman with private storage, runc, vfs and cgroupfs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::process::{exec, exec_ok, require_tool, scratch_dir};
use crate::Registry;

/// podman (no daemon) with its own `--root`, `--runroot` and `--tmpdir`, and a private
/// `DOCKER_CONFIG` holding `{}` (podman fails when `DOCKER_CONFIG` has no `config.json`).
/// Dropping it removes the storage.
#[derive(Debug)]
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    /// The `--ulimit` options every `podman run` gets (the defaults fail here).
    pub const ULIMITS: [&'static str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

    /// Creates the private directories.
    pub fn new() -> Podman {
        require_tool("podman");
        require_tool("runc");
        let dir = scratch_dir();
        let docker_config = dir.path().join("docker-config");
        fs::create_dir(&docker_config).expect("cannot create the docker config dir");
        fs::write(docker_config.join("config.json"), "{}\n").expect("cannot write config.json");
        // podman and skopeo read credentials from here, not from the host's files.
        fs::write(dir.path().join("auth.json"), "{\"auths\": {}}\n").expect("cannot write auth.json");
        Podman { dir }
    }

    /// The private `DOCKER_CONFIG` directory (write a `config.json` with credentials there,
    /// e.g. with [`Registry::write_docker_config`]).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// A `podman` command with the global options that make it work here and keep it private.
    pub fn command(&self) -> Command {
        let base = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.env("DOCKER_CONFIG", self.docker_config_dir())
            .env("REGISTRY_AUTH_FILE", base.join("auth.json"))
            .arg("--root")
            .arg(base.join("root"))
            .arg("--runroot")
            .arg(base.join("run"))
            .arg("--tmpdir")
            .arg(base.join("tmp"))
            .args([
                "--runtime",
                "runc",
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        cmd
    }

    /// `podman load -i ARCHIVE`; panics unless it succeeds. Returns stdout
    /// (`Loaded image: localhost/name:tag`).
    pub fn load(&self, archive: &Path) -> String {
        let out = exec_ok(self.command().arg("load").arg("-i").arg(archive));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman load -i ARCHIVE`, whatever the outcome.
    pub fn try_load(&self, archive: &Path) -> Output {
        exec(self.command().arg("load").arg("-i").arg(archive))
    }

    /// `podman pull` from `registry` (its TLS and credential flags added); panics on failure.
    pub fn pull(&self, registry: &Registry, repo_and_tag: &str) -> String {
        let out = exec_ok(self.command().arg("pull").args(registry.flags()).arg(registry.image(repo_and_tag)));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run --rm --network none` with [`Podman::ULIMITS`], whatever the outcome.
    pub fn run(&self, image: &str, args: &[&str]) -> Output {
        self.run_with(&[], image, args)
    }

    /// Like [`Podman::run`] with extra `podman run` options.
    pub fn run_with(&self, options: &[&str], image: &str, args: &[&str]) -> Output {
        exec(
            self.command()
                .args(["run", "--rm", "--network", "none", "--pull", "never"])
                .args(Self::ULIMITS)
                .args(options)
                .arg(image)
                .args(args),
        )
    }

    /// `podman image inspect IMAGE`, the one object of its array; panics if missing.
    pub fn inspect(&self, image: &str) -> Value {
        let out = exec_ok(self.command().args(["image", "inspect", image]));
        let mut list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("podman image inspect prints JSON");
        assert_eq!(list.len(), 1, "podman image inspect {image}: {list:?}");
        list.remove(0)
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}
