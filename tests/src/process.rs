//! Running external tools, and owning the long-running processes the test bed starts.
//!
//! Every helper in this crate runs tools through [`exec`] / [`exec_ok`], which capture
//! stdout and stderr, enforce a timeout, and panic with the whole command line and both
//! streams when something goes wrong — a failing test then says what happened.
//!
//! Daemons (the registry, dockerd) are owned by a [`Daemon`]: it stops exactly the process
//! it spawned, by PID, when dropped. A small watchdog shell, also spawned by us, does the
//! same if the test process dies first (a panic inside a `static`, a `SIGKILL`, Ctrl-C), so
//! no daemon outlives the run.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long [`exec`] and [`exec_ok`] let a command run before killing it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The message every missing tool produces: tests fail (never skip) when a tool is missing.
pub fn not_installed(name: &str) -> String {
    format!("{name} is not installed: run scripts/install-test-deps.sh")
}

/// Panics unless `name` can be run: an absolute path must exist, a bare name must be on `PATH`.
pub fn require_tool(name: &str) {
    if find_tool(name).is_none() {
        panic!("{}", not_installed(name));
    }
}

/// Where `name` would be run from, if anywhere (an absolute path, or a search of `PATH`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() || name.contains('/') {
        return path.is_file().then(|| path.to_path_buf());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Renders a command the way a shell would accept it, environment overrides first.
pub fn describe(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!("{}={}", key.to_string_lossy(), quote(&value.to_string_lossy())));
        }
    }
    parts.push(quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|arg| quote(&arg.to_string_lossy())));
    parts.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion with [`DEFAULT_TIMEOUT`], stdin closed, output captured.
///
/// Panics only if the command cannot start (with the "not installed" message when the
/// program is missing) or runs out of time; a non-zero exit is returned for the caller
/// to judge. Use [`exec_ok`] when the command must succeed.
pub fn exec(cmd: &mut Command) -> Output {
    exec_timeout(cmd, DEFAULT_TIMEOUT)
}

/// Like [`exec`], and panics with the command, its status and both streams unless it exits 0.
pub fn exec_ok(cmd: &mut Command) -> Output {
    let output = exec(cmd);
    if !output.status.success() {
        panic!("{}", failure_report(cmd, &output));
    }
    output
}

/// Like [`exec`] with an explicit time limit; on timeout the child (that PID only) is killed.
pub fn exec_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(cmd);
    let (tx, rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(stdout) = child.stdout.take() {
        readers += 1;
        let tx = tx.clone();
        thread::spawn(move || tx.send((1, read_all(stdout))));
    }
    if let Some(stderr) = child.stderr.take() {
        readers += 1;
        let tx = tx.clone();
        thread::spawn(move || tx.send((2, read_all(stderr))));
    }
    drop(tx);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("timed out after {:?} (killed pid {}): {}", timeout, child.id(), describe(cmd));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(err) => panic!("cannot wait for {}: {err}", describe(cmd)),
        }
    };

    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..readers {
        // A grandchild that inherited the pipes may keep them open; don't wait forever.
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
        match rx.recv_timeout(wait) {
            Ok((1, bytes)) => stdout = bytes,
            Ok((_, bytes)) => stderr = bytes,
            Err(_) => panic!("{} exited ({status}) but its output pipes stayed open", describe(cmd)),
        }
    }
    Output { status, stdout, stderr }
}

fn read_all(mut stream: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    bytes
}

/// Spawns `cmd` as is, panicking with a helpful message if it cannot start.
pub fn spawn(cmd: &mut Command) -> Child {
    match cmd.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            panic!("{} (cannot start {})", not_installed(&cmd.get_program().to_string_lossy()), describe(cmd))
        }
        Err(err) => panic!("cannot start {}: {err}", describe(cmd)),
    }
}

/// A multi-line report of a command's outcome, for panic messages.
pub fn failure_report(cmd: &Command, output: &Output) -> String {
    format!(
        "command failed ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        describe(cmd),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Convenience accessors for a finished command's [`Output`].
pub trait OutputExt {
    /// stdout as (lossy) UTF-8.
    fn stdout_text(&self) -> String;
    /// stderr as (lossy) UTF-8.
    fn stderr_text(&self) -> String;
    /// Panics with both streams unless the command exited 0; `what` names it in the message.
    fn assert_success(&self, what: &str) -> &Self;
    /// Panics with both streams if the command exited 0; `what` names it in the message.
    fn assert_failure(&self, what: &str) -> &Self;
}

impl OutputExt for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }

    fn assert_failure(&self, what: &str) -> &Self {
        assert!(
            !self.status.success(),
            "{what} unexpectedly succeeded\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout_text(),
            self.stderr_text()
        );
        self
    }
}

/// A private scratch directory under `/tmp` with a short name (`/tmp/zi-XXXXXX`), removed
/// on drop. Short because unix socket paths inside it are limited to 108 bytes.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("zi-").tempdir_in("/tmp").expect("cannot create a scratch directory under /tmp")
}

/// A name no other test in this or any concurrent run uses: `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the caller should retry on a clash).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("cannot bind 127.0.0.1:0")
        .port()
}

/// Sends `signal` (e.g. "TERM", "KILL") to exactly `pid`; errors (already gone) are ignored.
pub fn signal(pid: u32, signal: &str) {
    // `kill` is a builtin of every sh; procps' /bin/kill is not always installed.
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\" 2>/dev/null", "sh", signal])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The watchdog: waits for a line on stdin. "stop" means the owner cleaned up itself;
/// EOF means the owner died, so stop the daemon ($1) and remove its directory ($2).
const WATCHDOG: &str = r#"trap '' INT HUP
line=
read -r line
[ "$line" = stop ] && exit 0
kill -TERM "$1" 2>/dev/null || exit 0
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 150 ]; do
  stat=$(cat "/proc/$1/stat" 2>/dev/null)
  case "$stat" in *") Z "*) break ;; esac
  i=$((i + 1))
  [ "$i" -eq 100 ] && kill -KILL "$1" 2>/dev/null
  sleep 0.2
done
[ -n "$2" ] && rm -rf -- "$2"
exit 0
"#;

/// A long-running process we spawned (a registry, dockerd), stopped by PID on drop.
///
/// Its stdout and stderr go to a log file. Stopping sends `SIGTERM`, waits up to
/// [`Daemon::GRACE`], then sends `SIGKILL` — to that PID only.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
    log: PathBuf,
    stopped: Option<ExitStatus>,
}

impl Daemon {
    /// How long [`Daemon::stop`] waits after `SIGTERM` before `SIGKILL`.
    pub const GRACE: Duration = Duration::from_secs(30);

    /// Spawns `cmd` with stdin closed and both output streams appended to `log`.
    ///
    /// If this process dies without dropping the `Daemon`, a watchdog stops the daemon and
    /// removes `cleanup_dir` (pass the daemon's private directory).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, cleanup_dir: Option<&Path>) -> Daemon {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|err| panic!("cannot open log {}: {err}", log.display()));
        let err = out.try_clone().expect("cannot duplicate log file handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = spawn(cmd);
        let mut daemon =
            Daemon { name: name.to_string(), child, watchdog: None, log: log.to_path_buf(), stopped: None };
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", WATCHDOG, "zeroimage-watchdog"])
            .arg(daemon.pid().to_string())
            .arg(cleanup_dir.map(Path::as_os_str).unwrap_or(OsStr::new("")))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut watchdog = spawn(&mut watchdog);
        let stdin = watchdog.stdin.take().expect("watchdog stdin is piped");
        daemon.watchdog = Some((watchdog, stdin));
        daemon
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file holding the daemon's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `Some(status)` once the daemon has exited (reaping it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.stopped.is_none() {
            self.stopped = self.child.try_wait().ok().flatten();
        }
        self.stopped
    }

    /// Polls `ready` every 100 ms until it returns true. Panics with the log tail if the
    /// daemon exits first or `timeout` passes.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            if let Some(status) = self.exit_status() {
                panic!(
                    "{} exited ({status}) before {what}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} (pid {}) not {what} after {timeout:?}; log {}:\n{}",
                    self.name,
                    self.pid(),
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon: `SIGTERM`, up to [`Daemon::GRACE`], then `SIGKILL`. Idempotent.
    pub fn stop(&mut self) {
        if let Some((mut watchdog, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"stop\n");
            drop(stdin);
            let _ = watchdog.wait();
        }
        if self.exit_status().is_some() {
            return;
        }
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + Self::GRACE;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.stopped = self.child.wait().ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
