//! A private containerd (`ctr`), for the suites that run images the way Docker's containerd
//! image store and Kubernetes nodes do.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{exec, exec_ok, exec_timeout, require_tool, scratch_dir, unique_name, Daemon};

/// A private containerd 1.6 (its own root, state and sockets; CRI cgroups off), as
/// ../shared/notes/runtime-facts.md describes; `ctr` imports and runs images with the native
/// snapshotter.
#[allow(missing_debug_implementations)] // holds a daemon and a directory, nothing to show
pub struct Containerd {
    socket: PathBuf,
    /// Imports (and removals) one at a time: two concurrent imports sharing a base layer race
    /// in containerd 1.6 ("parent snapshot … does not exist").
    import: std::sync::Mutex<()>,
    _daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Containerd {
    /// One containerd shared by the tests of this process (stopped by its watchdog at exit).
    pub fn shared() -> &'static Containerd {
        static SHARED: OnceLock<Containerd> = OnceLock::new();
        SHARED.get_or_init(|| {
            require_tool("containerd");
            require_tool("ctr");
            let dir = scratch_dir();
            let root = dir.path();
            let socket = root.join("c.sock");
            let config = root.join("config.toml");
            let text = format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{0}/c.sock\"\n\
                 [ttrpc]\n  address = \"{0}/c.ttrpc.sock\"\n[debug]\n  address = \"{0}/c.debug.sock\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable_cgroup = true\n",
                root.display()
            );
            fs::write(&config, text).unwrap();
            let mut cmd = Command::new("containerd");
            cmd.arg("--config").arg(&config);
            let mut daemon = Daemon::spawn("containerd", &mut cmd, &root.join("containerd.log"), Some(root));
            let mut probe = Command::new("ctr");
            probe.arg("--address").arg(&socket).arg("version");
            daemon.wait_until("answering `ctr version`", Duration::from_secs(60), || {
                exec_timeout(&mut probe, Duration::from_secs(20)).status.success()
            });
            Containerd { socket, import: std::sync::Mutex::new(()), _daemon: daemon, _dir: dir }
        })
    }

    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(&self.socket);
        cmd
    }

    /// `ctr images import` the archive, then `ctr run --rm` the image named `image` (as
    /// `docker.io/library/NAME:TAG`), whatever the outcome.
    pub fn run(&self, archive: &Path, image: &str) -> Output {
        self.run_platform(archive, image, None)
    }

    /// [`run`](Self::run) for one `platform` of a multi-platform archive: `ctr images import
    /// --all-platforms`, then `ctr run --platform PLATFORM`.
    pub fn run_platform(&self, archive: &Path, image: &str, platform: Option<&str>) -> Output {
        {
            let _one_at_a_time = self.import.lock().unwrap_or_else(|e| e.into_inner());
            let mut import = self.ctr();
            import.args(["images", "import", "--snapshotter", "native"]);
            if platform.is_some() {
                import.arg("--all-platforms");
            }
            exec_ok(import.arg(archive));
        }
        let full = format!("docker.io/library/{image}");
        let name = unique_name("ctr");
        let mut run = self.ctr();
        run.args(["run", "--rm", "--snapshotter", "native"]);
        if let Some(platform) = platform {
            run.args(["--platform", platform]);
        }
        let out = exec_timeout(run.arg(&full).arg(&name), Duration::from_secs(120));
        let _one_at_a_time = self.import.lock().unwrap_or_else(|e| e.into_inner());
        let _ = exec(self.ctr().args(["images", "rm", &full]));
        out
    }
}
