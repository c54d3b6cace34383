//! `--bundle-libs`: dynamically linked programs nobody here wrote the loader or libraries of
//! (gcc + glibc + zlib + OpenSSL, rustc's default gnu target, PyInstaller, musl-gcc, an arm64
//! program with Debian's cross sysroot under QEMU), built on `builtin:static` and run as its non-root
//! user by runc (after umoci unpack), a private Docker engine, a private containerd and podman. Each fails without
//! `--bundle-libs` (refused, or with `--allow-dynamic` failing when it starts) and runs with it.
//! Then the bad inputs: a library missing from the sysroot, a wrong-architecture library first
//! on the search path, a symlink pointing out of the sysroot, a missing sysroot.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use zeroimage_tests::process::{exec, exec_ok, require_tool, scratch_dir, unique_name};
use zeroimage_tests::{oci, zeroimage_cmd, Containerd, DockerDaemon, ImageLayout, OutputExt, Podman};

const PROBE_SOURCE: &str = include_str!("../fixtures/bundle/probe.c");
const RECORD: &str = "usr/share/zeroimage/bundled-libs.json";

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// `zeroimage build ARGS…` with a fixed SOURCE_DATE_EPOCH, whatever the outcome.
fn build(args: &[&str]) -> Output {
    exec(zeroimage_cmd().arg("build").args(args).env("SOURCE_DATE_EPOCH", "1700000000"))
}

/// Compile the probe (`probe.c`) with `compiler` and `flags`, to `dir/name`.
fn compile_probe(dir: &Path, name: &str, compiler: &str, flags: &[&str]) -> PathBuf {
    require_tool(compiler);
    let source = dir.join("probe.c");
    fs::write(&source, PROBE_SOURCE).unwrap();
    let out = dir.join(name);
    let mut cmd = Command::new(compiler);
    cmd.args(["-O2", "-Wall", "-o"]).arg(&out).arg(&source).args(flags);
    exec_ok(&mut cmd);
    out
}

/// The C probe using zlib and OpenSSL.
fn ssl_probe(dir: &Path) -> PathBuf {
    compile_probe(dir, "probe", "gcc", &["-DWITH_SSL", "-lssl", "-lcrypto", "-lz"])
}

/// Set up QEMU user emulation for arm64 programs (binfmt_misc with the F flag, so it works
/// inside containers too), as ../shared/notes/runtime-facts.md describes.
fn enable_qemu_arm64() {
    require_tool("update-binfmts");
    if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
        exec_ok(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"]));
    }
    exec_ok(Command::new("update-binfmts").args(["--enable", "qemu-aarch64"]));
}

/// Build `program` on builtin:static with `extra` flags into `dir/NAME.tar`, tagged; panics
/// unless it succeeds. Returns (archive, image name, the --json result).
fn build_image(dir: &Path, program: &Path, extra: &[&str]) -> (PathBuf, String, Value) {
    let name = unique_name("bundle");
    let image = format!("{name}:1");
    let archive = dir.join(format!("{name}.tar"));
    let mut args = vec![s(program), "--from".into(), "builtin:static".into(), "-t".into(), image.clone()];
    args.extend(["-o".into(), s(&archive), "--json".into()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = build(&args);
    out.assert_success("zeroimage build");
    let result: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    (archive, image, result)
}

/// Run the image under runc (umoci unpack), as the image's user.
fn run_runc(archive: &Path) -> Output {
    let work = scratch_dir();
    let layout = work.path().join("layout");
    oci::oci_archive_to_layout(archive, &layout, "t");
    oci::runc_run(&layout, "t", &[])
}

/// Run the image under runc, Docker, containerd and podman, as the image's user, and check
/// each output with `check`.
fn run_everywhere(archive: &Path, image: &str, check: impl Fn(&str, &Output)) {
    check("runc", &run_runc(archive));
    let docker = DockerDaemon::shared();
    docker.load(archive);
    check("docker", &docker.run(image, &[]));
    check("containerd", &Containerd::shared().run(archive, image));
    let podman = Podman::new();
    podman.load(archive);
    check("podman", &podman.run(image, &[]));
}

/// The record of bundled libraries in the image's library layer (the layer below the
/// program's), read with the tar crate; also checks the layers and the library layer's entries.
fn record_in_image(archive: &Path) -> Value {
    use std::io::Read;
    let layout = ImageLayout::open(archive);
    let image = layout.image();
    assert_eq!(image.layers.len(), 3, "builtin base, libraries, program");
    let libraries = &image.layers[1];
    let paths = libraries.paths();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "sorted, parents first");
    assert!(libraries.entries.iter().all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 1700000000));
    let mut tar_bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(layout.blob(&libraries.digest).unwrap()).read_to_end(&mut tar_bytes).unwrap();
    for entry in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == RECORD {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return serde_json::from_slice(&data).unwrap();
        }
    }
    panic!("no {RECORD} in {paths:?}")
}

fn library<'a>(record: &'a Value, suffix: &str) -> &'a Value {
    record["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in {record}"))
}

/// Without --bundle-libs the build is refused with a hint naming it; with --allow-dynamic it
/// builds and fails when it starts under runc.
fn fails_without_bundle_libs(dir: &Path, program: &Path) {
    let refused = build(&[&s(program), "--from", "builtin:static", "-o", &s(&dir.join("refused.tar"))]);
    refused.assert_failure("a dynamic program without --bundle-libs");
    assert!(refused.stderr_text().contains("--bundle-libs"), "{}", refused.stderr_text());
    assert!(!dir.join("refused.tar").exists());
    let archive = dir.join("dynamic.tar");
    build(&[&s(program), "--from", "builtin:static", "--allow-dynamic", "-o", &s(&archive)])
        .assert_success("--allow-dynamic");
    let out = run_runc(&archive);
    assert!(!out.status.success(), "runs without its libraries?\n{}", out.stdout_text());
}

#[test]
fn c_program_with_zlib_and_openssl() {
    let dir = scratch_dir();
    let probe = ssl_probe(dir.path());
    fails_without_bundle_libs(dir.path(), &probe);

    let (archive, image, result) = build_image(dir.path(), &probe, &["--bundle-libs"]);
    run_everywhere(&archive, &image, |runtime, out| {
        out.assert_success(runtime);
        let text = out.stdout_text();
        assert!(text.starts_with("user nonroot\n"), "{runtime}: {text}");
        assert!(text.contains("zlib 1.") && text.contains("-> 69"), "{runtime}: {text}");
        assert!(text.contains("verified=yes against"), "{runtime}: {text}");
    });

    // The record: in the image and in --json, with hashes of the real files and Debian packages.
    let record = record_in_image(&archive);
    let bundled = &result["bundled"];
    assert_eq!(record["libraries"], bundled["libraries"]);
    assert_eq!(record["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    let ssl = library(&record, "/libssl.so.3");
    let source = ssl["source"].as_str().unwrap();
    assert_eq!(ssl["sha256"], zeroimage_tests::sha256_file(Path::new(source)));
    assert_eq!(ssl["package"], "libssl3");
    assert!(ssl["version"].as_str().unwrap().starts_with("3."), "{ssl}");
    assert_eq!(library(&record, "/libz.so.1")["package"], "zlib1g");
    assert_eq!(ssl["needed_by"], "/probe");
    assert_eq!(library(&record, "/ld-linux-x86-64.so.2")["needed_by"], "/probe (PT_INTERP)");

    // The same libraries give the same image.
    let (_, _, again) = build_image(dir.path(), &probe, &["--bundle-libs"]);
    assert_eq!(again["digest"], result["digest"]);
}

#[test]
fn rust_program_for_the_default_gnu_target() {
    let dir = scratch_dir();
    require_tool("rustc");
    let source = dir.path().join("main.rs");
    fs::write(
        &source,
        r#"fn main() {
    // Unwinding goes through libgcc_s, threads through libc.
    let caught = std::panic::catch_unwind(|| panic!("on purpose")).is_err();
    let sum: u64 = std::thread::spawn(|| (1..=100u64).sum()).join().unwrap();
    println!("rust caught={caught} sum={sum}");
}
"#,
    )
    .unwrap();
    let program = dir.path().join("rusty");
    exec_ok(Command::new("rustc").args(["-O", "--edition", "2021", "-o"]).arg(&program).arg(&source));
    fails_without_bundle_libs(dir.path(), &program);

    let (archive, image, result) = build_image(dir.path(), &program, &["--bundle-libs"]);
    let libraries: Vec<&str> =
        result["bundled"]["libraries"].as_array().unwrap().iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert!(libraries.iter().any(|p| p.ends_with("/libgcc_s.so.1")), "{libraries:?}");
    run_everywhere(&archive, &image, |runtime, out| {
        out.assert_success(runtime);
        assert!(out.stdout_text().contains("rust caught=true sum=5050"), "{runtime}: {}", out.stdout_text());
    });
}

#[test]
fn arm64_program_from_a_cross_sysroot_under_qemu() {
    let dir = scratch_dir();
    enable_qemu_arm64();
    let probe = compile_probe(dir.path(), "probe-arm64", "aarch64-linux-gnu-gcc", &[]);
    // Without --sysroot: the libraries of this machine are the wrong ones, and the error says so.
    let out = build(&[&s(&probe), "--from", "builtin:static", "--bundle-libs", "-o", &s(&dir.path().join("x.tar"))]);
    out.assert_failure("an arm64 program without --sysroot");
    assert!(out.stderr_text().contains("arm64") && out.stderr_text().contains("--sysroot"), "{}", out.stderr_text());
    fails_without_bundle_libs(dir.path(), &probe);

    let (archive, image, result) = build_image(dir.path(), &probe, &["--sysroot", "/usr/aarch64-linux-gnu"]);
    assert_eq!(result["platform"], "linux/arm64");
    assert_eq!(result["bundled"]["interpreter"], "/lib/ld-linux-aarch64.so.1");
    run_everywhere(&archive, &image, |runtime, out| {
        out.assert_success(runtime);
        assert_eq!(out.stdout_text(), "user nonroot\n", "{runtime}");
    });
}

#[test]
fn musl_program() {
    // Debian's musl-gcc: PT_INTERP /lib/ld-musl-x86_64.so.1, DT_NEEDED libc.so (the loader itself).
    let dir = scratch_dir();
    let probe = compile_probe(dir.path(), "probe-musl", "musl-gcc", &[]);
    fails_without_bundle_libs(dir.path(), &probe);
    let (archive, image, result) = build_image(dir.path(), &probe, &["--bundle-libs"]);
    let libraries = result["bundled"]["libraries"].as_array().unwrap();
    assert_eq!(libraries.len(), 1, "only the loader, which is musl's libc: {libraries:?}");
    assert_eq!(libraries[0]["path"], "/lib/ld-musl-x86_64.so.1");
    assert_eq!(libraries[0]["package"], "musl");
    run_everywhere(&archive, &image, |runtime, out| {
        out.assert_success(runtime);
        assert_eq!(out.stdout_text(), "user nonroot\n", "{runtime}");
    });
}

/// A virtual environment with PyInstaller, made once per machine (pip needs PyPI the first
/// time) in the temporary directory, and reused.
fn pyinstaller_python() -> PathBuf {
    require_tool("python3");
    let venv = std::env::temp_dir().join("zeroimage-tests-pyinstaller-venv");
    let python = venv.join("bin/python");
    if python.exists() && exec(Command::new(&python).args(["-m", "PyInstaller", "--version"])).status.success() {
        return python;
    }
    let building = std::env::temp_dir().join(unique_name("zeroimage-tests-pyinstaller-venv"));
    exec_ok(Command::new("python3").args(["-m", "venv"]).arg(&building));
    exec_ok(Command::new(building.join("bin/python")).args(["-m", "pip", "install", "-q", "pyinstaller"]));
    // Another test process may have won the race: either venv works.
    if fs::rename(&building, &venv).is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    python
}

#[test]
fn pyinstaller_one_file_program() {
    let dir = scratch_dir();
    let python = pyinstaller_python();
    let app = dir.path().join("app.py");
    fs::write(
        &app,
        "import datetime, os, pwd, ssl, zoneinfo\n\
         zone = zoneinfo.ZoneInfo('Europe/Paris')\n\
         print('ssl', ssl.OPENSSL_VERSION)\n\
         print('zoneinfo', zone.key, datetime.datetime(2024, 7, 1, 12, tzinfo=zone).utcoffset())\n\
         print('cas', ssl.create_default_context().cert_store_stats()['x509_ca'])\n\
         print('user', pwd.getpwuid(os.getuid()).pw_name)\n",
    )
    .unwrap();
    let work = dir.path().join("pyi");
    exec_ok(
        Command::new(&python)
            .args(["-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level", "WARN", "--distpath"])
            .arg(work.join("dist"))
            .arg("--workpath")
            .arg(work.join("build"))
            .arg("--specpath")
            .arg(&work)
            .arg(&app),
    );
    let program = work.join("dist/app");
    fails_without_bundle_libs(dir.path(), &program);

    let (archive, image, _) = build_image(dir.path(), &program, &["--bundle-libs"]);
    run_everywhere(&archive, &image, |runtime, out| {
        out.assert_success(runtime);
        let text = out.stdout_text();
        assert!(text.contains("ssl OpenSSL"), "{runtime}: {text}");
        assert!(text.contains("zoneinfo Europe/Paris 2:00:00"), "{runtime}: {text}");
        assert!(text.contains("user nonroot"), "{runtime}: {text}");
        let cas: usize = text.lines().find_map(|l| l.strip_prefix("cas ")).unwrap().parse().unwrap();
        assert!(cas > 50, "{runtime}: {text}");
    });
}

/// A sysroot holding copies of this machine's loader and libc (and of libz, when `libz`).
fn small_sysroot(dir: &Path, libz: bool) -> PathBuf {
    let root = dir.join("sysroot");
    let multiarch = root.join("usr/lib/x86_64-linux-gnu");
    fs::create_dir_all(&multiarch).unwrap();
    fs::create_dir_all(root.join("usr/lib64")).unwrap();
    symlink("usr/lib", root.join("lib")).unwrap();
    symlink("usr/lib64", root.join("lib64")).unwrap();
    let mut copy = vec!["ld-linux-x86-64.so.2", "libc.so.6"];
    if libz {
        copy.push("libz.so.1");
    }
    for name in copy {
        fs::copy(Path::new("/lib/x86_64-linux-gnu").join(name), multiarch.join(name)).unwrap();
    }
    symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
    root
}

/// A C program that needs libz only.
fn zlib_program(dir: &Path) -> PathBuf {
    let source = dir.join("z.c");
    fs::write(
        &source,
        "#include <stdio.h>\n#include <zlib.h>\nint main(void) { printf(\"zlib %s\\n\", zlibVersion()); return 0; }\n",
    )
    .unwrap();
    let out = dir.join("zprog");
    exec_ok(Command::new("gcc").args(["-O2", "-o"]).arg(&out).arg(&source).arg("-lz"));
    out
}

#[test]
fn a_library_missing_from_the_sysroot_is_named_with_who_needs_it_and_where_it_was_searched() {
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    let root = small_sysroot(dir.path(), false);
    let archive = dir.path().join("out.tar");
    let out = build(&[&s(&program), "--from", "builtin:static", "--sysroot", &s(&root), "-o", &s(&archive)]);
    out.assert_failure("a missing library");
    let err = out.stderr_text();
    for want in ["libz.so.1", &format!("needed by {}", program.display()), "/lib/x86_64-linux-gnu", "/usr/lib", "hint:"]
    {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(!archive.exists(), "nothing written");
}

#[test]
fn a_wrong_architecture_library_first_on_the_search_path_is_skipped() {
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    let root = small_sysroot(dir.path(), true);
    // An arm64 libz.so.1 (from the cross sysroot's libc, renamed) in a directory ld.so.conf
    // lists before the default ones.
    fs::create_dir_all(root.join("opt/arm64")).unwrap();
    fs::copy("/usr/aarch64-linux-gnu/lib/libc.so.6", root.join("opt/arm64/libz.so.1")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/ld.so.conf"), "/opt/arm64\n").unwrap();
    let (archive, image, result) = build_image(dir.path(), &program, &["--sysroot", &s(&root)]);
    let z = library(&result["bundled"], "/libz.so.1");
    assert_eq!(z["source"], "/usr/lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(z["path"], "/lib/x86_64-linux-gnu/libz.so.1");
    let _ = image;
    let out = run_runc(&archive);
    out.assert_success("runc");
    assert!(out.stdout_text().starts_with("zlib 1."), "{}", out.stdout_text());
}

#[test]
fn symlinks_pointing_out_of_the_sysroot_are_not_followed_out() {
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    for (i, target) in
        ["../../../../../../../../usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"]
            .iter()
            .enumerate()
    {
        let case = dir.path().join(format!("case{i}"));
        fs::create_dir_all(&case).unwrap();
        let root = small_sysroot(&case, false);
        if target.starts_with('/') {
            // Absolute: it means the sysroot's own /usr/lib/…, which has no libz.
            symlink(target, root.join("usr/lib/libz.so.1")).unwrap();
        } else {
            symlink(target, root.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap();
        }
        let archive = case.join("out.tar");
        let out = build(&[&s(&program), "--from", "builtin:static", "--sysroot", &s(&root), "-o", &s(&archive)]);
        out.assert_failure("a symlink out of the sysroot");
        assert!(out.stderr_text().contains("library libz.so.1 needed by"), "{}", out.stderr_text());
        assert!(!archive.exists());
    }
}

#[test]
fn a_missing_sysroot_is_an_error_and_a_static_program_only_a_note() {
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    let archive = dir.path().join("out.tar");
    let missing = dir.path().join("no-such-sysroot");
    let out = build(&[&s(&program), "--sysroot", &s(&missing), "-o", &s(&archive)]);
    out.assert_failure("a missing sysroot");
    assert!(
        out.stderr_text().contains(&format!("sysroot {} does not exist", missing.display())),
        "{}",
        out.stderr_text()
    );
    assert!(!archive.exists());

    let hello = zeroimage_tests::static_hello(dir.path());
    let out = build(&[&s(&hello), "--bundle-libs", "-o", &s(&archive)]);
    out.assert_success("a static program with --bundle-libs");
    assert!(
        out.stderr_text().contains("note:") && out.stderr_text().contains("statically linked"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(ImageLayout::open(&archive).image().layers.len(), 1, "no library layer");
}

#[test]
fn a_base_with_its_own_c_library_is_refused() {
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    let loader = fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    let layout = dir.path().join("glibc-layout");
    oci::umoci_image(&layout, "glibc", &[(&loader, "/lib64/ld-linux-x86-64.so.2")], &[]);
    let archive = dir.path().join("out.tar");
    let base = format!("oci:{}:glibc", layout.display());
    let out = build(&[&s(&program), "--from", &base, "--bundle-libs", "-o", &s(&archive)]);
    out.assert_failure("--bundle-libs on a base with a libc");
    assert!(out.stderr_text().contains("already has a C library"), "{}", out.stderr_text());
    assert!(!archive.exists());
}

/// The ```sh snippets of the README's "Dynamically linked programs" section run as written, in
/// a directory holding `./server` (the C probe) and `./server-arm64`, with `zeroimage` on PATH;
/// the images they write run.
#[test]
fn readme_snippets_run() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let start = readme.find("\n## Dynamically linked programs\n").expect("the README has the section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let snippets: Vec<&str> = section.split("```sh\n").skip(1).map(|rest| &rest[..rest.find("```").unwrap()]).collect();
    assert!(!snippets.is_empty());

    let dir = scratch_dir();
    enable_qemu_arm64();
    fs::rename(ssl_probe(dir.path()), dir.path().join("server")).unwrap();
    compile_probe(dir.path(), "server-arm64", "aarch64-linux-gnu-gcc", &[]);
    let bin_dir = zeroimage_tests::zeroimage_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for snippet in snippets {
        let out = exec(Command::new("sh").args(["-euc", snippet]).current_dir(dir.path()).env("PATH", &path));
        out.assert_success(snippet);
    }
    for archive in ["server.tar", "server-dns.tar", "server-arm64.tar"] {
        let out = run_runc(&dir.path().join(archive));
        out.assert_success(archive);
        assert!(out.stdout_text().starts_with("user nonroot\n"), "{archive}: {}", out.stdout_text());
    }
}

#[test]
fn a_base_whose_lib_is_a_symlink_is_refused() {
    // A merged-/usr base without a loader, made by umoci: /lib -> usr/lib.
    let dir = scratch_dir();
    let program = zlib_program(dir.path());
    let layout = dir.path().join("merged-usr");
    let reference = format!("{}:base", layout.display());
    exec_ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    exec_ok(Command::new("umoci").args(["new", "--image", &reference]));
    let bundle = dir.path().join("bundle");
    oci::umoci_unpack(&layout, "base", &bundle);
    fs::create_dir_all(bundle.join("rootfs/usr/lib")).unwrap();
    symlink("usr/lib", bundle.join("rootfs/lib")).unwrap();
    exec_ok(Command::new("umoci").args(["repack", "--image", &reference]).arg(&bundle));

    let archive = dir.path().join("out.tar");
    let base = format!("oci:{reference}");
    let out = build(&[&s(&program), "--from", &base, "--bundle-libs", "-o", &s(&archive)]);
    out.assert_failure("--bundle-libs over a /lib symlink");
    assert!(out.stderr_text().contains("has /lib as a symlink to usr/lib"), "{}", out.stderr_text());
    assert!(!archive.exists());
}
