//! A private Docker engine (dockerd 20.10 from Debian's `docker.io`, vfs storage).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::process::{exec, exec_ok, exec_timeout, require_tool, scratch_dir, signal, Daemon};

/// The Docker 20.10 client from Debian's `docker.io`. Always use this path: a newer client
/// may come first on `PATH` (e.g. `/usr/local/bin/docker`) and talk a different API.
pub const DOCKER_CLIENT: &str = "/usr/bin/docker";

/// A private `dockerd` on its own unix socket, data root and exec root, with no network
/// setup (`--iptables=false --ip6tables=false --bridge=none`) and the vfs storage driver.
///
/// Dropping it stops that dockerd (by PID), then its managed containerd if still running.
///
/// ```no_run
/// use zeroimage_tests::DockerDaemon;
/// let docker = DockerDaemon::start();
/// println!("{}", docker.load("hello.tar".as_ref()));
/// let out = docker.run("hello:latest", &["--uid"]);
/// assert!(out.status.success());
/// ```
#[derive(Debug)]
pub struct DockerDaemon {
    daemon: Daemon,
    socket: PathBuf,
    client_config: PathBuf,
    // Dropped last: the daemon must be stopped before its directories go away.
    dir: TempDir,
}

impl DockerDaemon {
    /// Starts a private dockerd and waits (up to 90 s) until `docker info` answers.
    pub fn start() -> DockerDaemon {
        require_tool("dockerd");
        require_tool(DOCKER_CLIENT);
        let dir = scratch_dir();
        let root = dir.path();
        let socket = root.join("docker.sock");
        let config_file = root.join("daemon.json");
        // Never read the host's /etc/docker/daemon.json.
        fs::write(&config_file, "{}\n").expect("cannot write daemon.json");
        let client_config = root.join("client");
        fs::create_dir(&client_config).expect("cannot create the client config dir");
        fs::write(client_config.join("config.json"), "{}\n").expect("cannot write config.json");

        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(&config_file)
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()));
        let daemon = Daemon::spawn("dockerd", &mut cmd, &root.join("dockerd.log"), Some(root));
        let mut docker = DockerDaemon { daemon, socket, client_config, dir };
        let mut probe = docker.docker();
        probe.arg("info");
        docker.daemon.wait_until("answering `docker info`", Duration::from_secs(90), || {
            exec_timeout(&mut probe, Duration::from_secs(30)).status.success()
        });
        docker
    }

    /// One dockerd shared by every test of this process, started on first use. It is stopped
    /// when the process exits (statics are never dropped; the watchdog does it).
    pub fn shared() -> &'static DockerDaemon {
        static SHARED: OnceLock<DockerDaemon> = OnceLock::new();
        SHARED.get_or_init(DockerDaemon::start)
    }

    /// The `-H` value: `unix:///tmp/zi-XXXXXX/docker.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The dockerd PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// dockerd's log (stdout + stderr).
    pub fn log_path(&self) -> &Path {
        self.daemon.log_path()
    }

    /// A `/usr/bin/docker -H unix://…` command with a private, empty `DOCKER_CONFIG`.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(DOCKER_CLIENT);
        cmd.env("DOCKER_CONFIG", &self.client_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(self.host());
        cmd
    }

    /// `docker load -i ARCHIVE`; panics unless it succeeds. Returns stdout
    /// (`Loaded image: name:tag` or `Loaded image ID: sha256:…`).
    pub fn load(&self, archive: &Path) -> String {
        let out = exec_ok(self.docker().arg("load").arg("-i").arg(archive));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker load -i ARCHIVE`, whatever the outcome.
    pub fn try_load(&self, archive: &Path) -> Output {
        exec(self.docker().arg("load").arg("-i").arg(archive))
    }

    /// `docker run --rm --network none --pull never IMAGE ARGS…`, whatever the outcome.
    pub fn run(&self, image: &str, args: &[&str]) -> Output {
        self.run_with(&[], image, args)
    }

    /// Like [`DockerDaemon::run`] with extra `docker run` options (e.g. `["--user", "1000"]`).
    pub fn run_with(&self, options: &[&str], image: &str, args: &[&str]) -> Output {
        exec(
            self.docker()
                .args(["run", "--rm", "--network", "none", "--pull", "never"])
                .args(options)
                .arg(image)
                .args(args),
        )
    }

    /// `docker image inspect IMAGE`, the one object of its array; panics if missing.
    pub fn inspect(&self, image: &str) -> Value {
        let out = exec_ok(self.docker().args(["image", "inspect", image]));
        let mut list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("docker image inspect prints JSON");
        assert_eq!(list.len(), 1, "docker image inspect {image}: {list:?}");
        list.remove(0)
    }

    /// Whether the engine has an image by that name or ID (e.g. after a
    /// `skopeo copy … docker-daemon:`, which exits 0 even when the engine rejects the image).
    pub fn has_image(&self, image: &str) -> bool {
        exec(self.docker().args(["image", "inspect", image])).status.success()
    }

    /// `docker image ls`: one JSON object per image (`Repository`, `Tag`, `ID`, …).
    pub fn images(&self) -> Vec<Value> {
        let out = exec_ok(self.docker().args(["image", "ls", "--no-trunc", "--format", "{{json .}}"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).expect("docker image ls prints JSON lines"))
            .collect()
    }
}

impl DockerDaemon {
    /// `docker save` (into `dir/saved.tar`) of `zi-busybox/multi-<unique>:1`: a three-layer image built
    /// here by the classic builder (`DOCKER_BUILDKIT=0 docker build --network none`) on a
    /// `docker import`ed busybox rootfs (Debian's busybox-static: `/bin/busybox`, `/bin/sh`).
    /// Its layers are uncompressed, as `docker save` writes them; `/etc/app/one` holds `one\n`,
    /// `/etc/app/two` holds `two\n`.
    pub fn busybox_multilayer_save(&self, dir: &Path) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        // Names of this call only: tests share the engine and run in parallel.
        let id = format!("{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        let (rootfs_name, name) = (format!("zi-busybox/rootfs-{id}:1"), format!("zi-busybox/multi-{id}:1"));
        require_tool("tar");
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).expect("cannot create the rootfs");
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox is missing: run scripts/install-test-deps.sh (busybox-static)");
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("cannot link bin/sh");
        let rootfs_tar = dir.join("rootfs.tar");
        exec_ok(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&rootfs_tar).arg("."));
        exec_ok(self.docker().arg("import").arg(&rootfs_tar).arg(&rootfs_name));
        let context = dir.join("context");
        fs::create_dir_all(&context).expect("cannot create the build context");
        fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM {rootfs_name}\n\
                 RUN /bin/busybox mkdir -p /etc/app && echo one > /etc/app/one\n\
                 RUN echo two > /etc/app/two && /bin/busybox ln -s /bin/busybox /bin/cat\n"
            ),
        )
        .expect("cannot write the Dockerfile");
        exec_ok(
            self.docker().env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none", "-t", &name]).arg(&context),
        );
        let saved = dir.join("saved.tar");
        exec_ok(self.docker().arg("save").arg("-o").arg(&saved).arg(&name));
        saved
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        self.daemon.stop();
        // dockerd stops its managed containerd on SIGTERM; after a SIGKILL it would not. Stop it
        // by the PID dockerd recorded, only if that process really is ours.
        let exec_root = self.dir.path().join("exec");
        let pid_file = exec_root.join("containerd").join("containerd.pid");
        if let Some(pid) = fs::read_to_string(pid_file).ok().and_then(|text| text.trim().parse::<u32>().ok()) {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline).contains(&*exec_root.to_string_lossy());
            if ours {
                signal(pid, "TERM");
            }
        }
    }
}
