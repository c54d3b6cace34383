//! Signals against the real `zeroimage` process: SIGINT (Ctrl-C), SIGTERM and SIGHUP reach
//! every loop and every blocking read, leave no temporary file and no output, and end with
//! the conventional exit codes (130, 143, 129); a second signal ends the process at once.
//!
//! The slow phases are real: a gzip bomb in a base layer read by the interpreter look-up,
//! a registry (behind the test bed's fault proxy) that never answers or stops reading, and
//! a large program being compressed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use zeroimage_tests::handmade::{self, LAYER_GZIP_MEDIA_TYPE};
use zeroimage_tests::process::spawn;
use zeroimage_tests::proxy::{Fault, FaultProxy};
use zeroimage_tests::{dynamic_hello, scratch_dir, static_hello, zeroimage_cmd, Registry};

/// A `zeroimage` run started in the background, its output going to files in `dir`.
struct Run {
    child: Child,
    dir: PathBuf,
}

impl Run {
    fn start(dir: &Path, args: &[&str]) -> Run {
        Run::start_with(dir, args, &[])
    }

    fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let docker = dir.join("docker-config");
        fs::create_dir_all(&docker).unwrap();
        let mut cmd = zeroimage_cmd();
        cmd.args(args)
            .current_dir(dir)
            .env("DOCKER_CONFIG", &docker)
            .env_remove("REGISTRY_AUTH_FILE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout")).unwrap())
            .stderr(fs::File::create(dir.join("stderr")).unwrap());
        Run { child: spawn(&mut cmd), dir: dir.to_path_buf() }
    }

    /// Send `signal` (`INT`, `TERM`, `HUP`) to this process only.
    fn signal(&self, signal: &str) {
        zeroimage_tests::process::signal(self.child.id(), signal);
    }

    /// Whether the process is still running.
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait at most `limit` for the process to end; kill it (this PID) and fail if it does not.
    fn wait(&mut self, limit: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{what}: zeroimage still ran {limit:?} after the signal\n--- stderr ---\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Wait (at most 120 s) until `ready` holds, polling.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Names in `dir` that zeroimage writes under a temporary name.
fn temporary_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("zeroimage-"))
        .collect()
}

/// The exit code the run ended with, and that it was cancelled cleanly: the message says
/// nothing was written, `out` does not exist, and no temporary file is left in `dir`.
fn assert_cancelled(status: ExitStatus, code: i32, run: &Run, out: &Path) {
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(code), "exit status {status}\n--- stderr ---\n{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(!out.exists(), "{} was written", out.display());
    assert!(temporary_files(&run.dir).is_empty(), "left behind: {:?}", temporary_files(&run.dir));
}

/// `hello` with `mib` MiB of pseudo-random bytes appended (still a valid ELF executable):
/// a program whose layer takes a while to compress and upload.
fn big_program(dir: &Path, mib: usize) -> PathBuf {
    let program = static_hello(dir);
    let mut file = fs::OpenOptions::new().append(true).open(&program).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
    program
}

/// An OCI layout (tag `bomb`) whose one layer is a gzip bomb: `members` concatenated gzip
/// members of 64 MiB of zeros each (a valid gzip stream of `members` × 64 MiB, about 64 KiB
/// each on disk). The tar inside is all zero blocks: the end of the archive, then padding
/// that a reader checking the layer's digest reads to the end.
fn gzip_bomb_base(dir: &Path, members: usize) -> PathBuf {
    let member = handmade::gzip(&vec![0u8; 64 << 20]);
    let blob = member.repeat(members);
    let mut files = std::collections::BTreeMap::new();
    let layer = handmade::add_blob(&mut files, LAYER_GZIP_MEDIA_TYPE, blob);
    // The diff_id is not what the bytes hash to: nothing should read that far.
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "0".repeat(64))]},
    });
    let config = handmade::add_blob(&mut files, handmade::CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": handmade::MANIFEST_MEDIA_TYPE, "config": config, "layers": [layer],
    });
    let mut manifest =
        handmade::add_blob(&mut files, handmade::MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap());
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": "bomb"});
    files.insert("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [manifest]})).unwrap(),
    );
    let layout = dir.join("bomb-layout");
    handmade::write_dir(&layout, &files);
    layout
}

#[test]
fn ctrl_c_stops_the_interpreter_look_up_in_a_gzip_bomb() {
    let dir = scratch_dir();
    // 64 GiB of zeros once inflated: minutes of work for a reader that never looks up.
    let base = gzip_bomb_base(dir.path(), 1024);
    let program = dynamic_hello(dir.path());
    let out = dir.path().join("out.tar");
    let from = format!("oci:{}:bomb", base.display());
    let mut run = Run::start(dir.path(), &["build", program.to_str().unwrap(), "--from", &from, "-o", "out.tar"]);
    // Let it get well into the layer.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.running(), "the look-up ended by itself\n{}", run.stderr());
    run.signal("INT");
    let status = run.wait(Duration::from_secs(5), "Ctrl-C in the interpreter look-up");
    assert_cancelled(status, 130, &run, &out);
}

#[test]
fn ctrl_c_stops_a_build_waiting_for_a_registry_that_never_answers() {
    let registry = Registry::start();
    // The base's manifest request gets no answer; --timeout would end it after 30 s.
    let proxy =
        FaultProxy::start(
            registry.addr(),
            |req| if req.target.contains("/manifests/") { Fault::Stall } else { Fault::Pass },
        );
    let dir = scratch_dir();
    let program = static_hello(dir.path());
    let out = dir.path().join("out.tar");
    let from = format!("{}/stalled/base:1", proxy.addr());
    let mut run = Run::start(
        dir.path(),
        &["build", program.to_str().unwrap(), "--from", &from, "--timeout", "30", "-o", "out.tar"],
    );
    wait_until("the manifest request", || proxy.seen().iter().any(|(r, f)| *f == Fault::Stall && r.method == "GET"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.running(), "{}", run.stderr());
    let started = Instant::now();
    run.signal("INT");
    let status = run.wait(Duration::from_secs(5), "Ctrl-C during a stalled registry request");
    assert_cancelled(status, 130, &run, &out);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[test]
fn sigterm_sighup_and_sigint_while_compressing_clean_up_and_exit_128_plus_the_signal() {
    let dir = scratch_dir();
    let program = big_program(dir.path(), 96);
    for (signal, code) in [("TERM", 143), ("HUP", 129), ("INT", 130)] {
        let work = dir.path().join(format!("sig-{signal}"));
        fs::create_dir(&work).unwrap();
        let out = work.join("out.tar");
        let mut run = Run::start(
            &work,
            &["build", program.to_str().unwrap(), "--compression-level", "9", "-j", "1", "-o", "out.tar"],
        );
        // The layer is being written next to the output.
        wait_until("the temporary layer file", || {
            temporary_files(&work).iter().any(|n| n.starts_with(".zeroimage-layer-")) || !run.running()
        });
        assert!(run.running(), "the build ended before the signal\n{}", run.stderr());
        run.signal(signal);
        let status = run.wait(Duration::from_secs(5), &format!("SIG{signal} while compressing"));
        assert_cancelled(status, code, &run, &out);
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_while_an_upload_is_blocked() {
    let registry = Registry::start();
    // The registry stops reading in the middle of the first upload: the write blocks.
    let proxy = FaultProxy::start(registry.addr(), |req| {
        if matches!(req.method.as_str(), "PATCH" | "PUT") && req.content_length > 0 && req.target.contains("/blobs/") {
            Fault::Stall
        } else {
            Fault::Pass
        }
    });
    let dir = scratch_dir();
    let program = big_program(dir.path(), 24);
    let target = format!("{}/stalled/app:1", proxy.addr());
    // One PUT of the whole 24 MiB blob: far more than the socket buffers hold.
    let mut run = Run::start_with(
        dir.path(),
        &["build", program.to_str().unwrap(), "--compression", "none", "--timeout", "60", "--push", &target],
        &[("ZEROIMAGE_PUSH_CHUNK_SIZE", "1073741824")],
    );
    wait_until("the stalled upload", || proxy.seen().iter().any(|(_, f)| *f == Fault::Stall) || !run.running());
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.running(), "{}", run.stderr());
    run.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    // A blocked write is not interrupted (only reads are): the first Ctrl-C waits for it.
    assert!(run.running(), "{}", run.stderr());
    let started = Instant::now();
    run.signal("INT");
    let status = run.wait(Duration::from_secs(3), "a second Ctrl-C");
    assert_eq!(status.code(), Some(130), "{status}\n{}", run.stderr());
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn ctrl_c_stops_a_load_into_an_engine_that_takes_the_upload_slowly() {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = scratch_dir();
    // A Docker engine that takes the upload slowly (64 KiB every 10 ms) and, like a real one,
    // answers only once the upload ended.
    let socket = dir.path().join("engine.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receiving = Arc::new(AtomicBool::new(false));
    let flag = receiving.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let flag = flag.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    flag.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
    });
    let program = big_program(dir.path(), 32);
    let host = format!("unix://{}", socket.display());
    let mut run = Run::start_with(
        dir.path(),
        &["build", program.to_str().unwrap(), "--compression", "none", "-o", "docker-daemon:slow:1"],
        &[("DOCKER_HOST", &host)],
    );
    wait_until("the upload", || receiving.load(Ordering::SeqCst) || !run.running());
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.running(), "{}", run.stderr());
    run.signal("INT");
    let status = run.wait(Duration::from_secs(5), "Ctrl-C during a load into the engine");
    assert_eq!(status.code(), Some(130), "{status}\n{}", run.stderr());
    assert!(temporary_files(&run.dir).is_empty(), "left behind: {:?}", temporary_files(&run.dir));
}
