//! Issue 9: parallel gzip, zstd and uncompressed layers, checked by tools zeroimage did not write.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zeroimage_tests::{
    exec, oci_archive_to_layout, runc_run, scratch_dir, sha256_file, skopeo_inspect_raw, static_hello, zeroimage_cmd,
    DockerDaemon, ImageLayout, OutputExt, Podman, HELLO_LINE,
};

fn build(args: &[&str], cwd: &Path) -> Output {
    exec(zeroimage_cmd().current_dir(cwd).env_remove("SOURCE_DATE_EPOCH").arg("build").args(args))
}

/// `hello` followed by 3 MiB of its own bytes and a counter: still runs (the loader ignores
/// trailing data), and spans a dozen 256 KiB compression blocks.
fn big_hello(dir: &Path) -> PathBuf {
    let hello = fs::read(static_hello(dir)).unwrap();
    let path = dir.join("big");
    let mut file = fs::File::create(&path).unwrap();
    file.write_all(&hello).unwrap();
    let mut written = hello.len();
    let mut i = 0u32;
    while written < 3 << 20 {
        file.write_all(&hello[..hello.len().min(100_000)]).unwrap();
        file.write_all(&i.to_le_bytes()).unwrap();
        written += hello.len().min(100_000) + 4;
        i += 1;
    }
    drop(file);
    let mut perms = fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&path, perms).unwrap();
    path
}

fn layer_media_type(archive: &Path) -> String {
    let manifest = skopeo_inspect_raw(&format!("oci-archive:{}", archive.display()));
    manifest["layers"][0]["mediaType"].as_str().unwrap().to_string()
}

/// The layer blob of a one-layer archive, taken out of the tar by its digest (skopeo's view).
fn layer_blob(archive: &Path) -> Vec<u8> {
    let manifest = skopeo_inspect_raw(&format!("oci-archive:{}", archive.display()));
    let digest = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    let want = format!("blobs/sha256/{}", &digest[7..]);
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == want {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            assert_eq!(zeroimage_tests::sha256_digest(&bytes), digest);
            return bytes;
        }
    }
    panic!("{want} not in {}", archive.display());
}

#[test]
fn parallel_gzip_is_identical_for_any_jobs_and_runs_everywhere() {
    let dir = scratch_dir();
    let big = big_hello(dir.path());
    let mut digests = Vec::new();
    for jobs in ["1", "2", "4"] {
        let out = build(&["big", "-o", &format!("big-{jobs}.tar"), "--jobs", jobs, "--tag", "big:1"], dir.path());
        out.assert_success("zeroimage build --jobs");
        digests.push(sha256_file(&dir.path().join(format!("big-{jobs}.tar"))));
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "archives differ by --jobs: {digests:?}");
    let archive = dir.path().join("big-2.tar");
    assert_eq!(layer_media_type(&archive), "application/vnd.oci.image.layer.v1.tar+gzip");

    // One gzip member that the system gzip, Python and the independent reader all expand to
    // the program (the reader also checks the diff_id).
    let blob = layer_blob(&archive);
    let layout = ImageLayout::open(&archive);
    let entry = layout.image().layers[0].entry("big").expect("the program at /big");
    assert_eq!(entry.digest.as_deref(), Some(sha256_file(&big).as_str()));
    let blob_path = dir.path().join("layer.gz");
    fs::write(&blob_path, &blob).unwrap();
    let python = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1], 'rb').read()))";
    for (tool, args) in [("gzip", vec!["-dc"]), ("python3", vec!["-c", python])] {
        let out = exec(Command::new(tool).args(&args).arg(&blob_path));
        out.assert_success(tool);
        let mut tar = tar::Archive::new(&out.stdout[..]);
        let mut entries = tar.entries().unwrap();
        let mut program = entries.next().unwrap().unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut program, &mut bytes).unwrap();
        assert!(bytes == fs::read(&big).unwrap(), "{tool} expands the layer to the program");
    }

    // Go's compress/gzip: umoci unpacks it and runc runs it; Docker 20.10 loads and runs it.
    runs_under_runc_and_docker(&archive, &dir.path().join("layout"), "big:1");
}

#[test]
fn uncompressed_layer_runs_under_runc_and_docker() {
    let dir = scratch_dir();
    static_hello(dir.path());
    build(&["hello", "-o", "plain.tar", "--compression", "none", "--tag", "plain:1"], dir.path())
        .assert_success("zeroimage build --compression none");
    let archive = dir.path().join("plain.tar");
    assert_eq!(layer_media_type(&archive), "application/vnd.oci.image.layer.v1.tar");
    let layout = ImageLayout::open(&archive);
    assert!(layout.problems.is_empty(), "{:?}", layout.problems);
    let layer = &layout.image().layers[0];
    assert_eq!(layer.digest, layout.image().config_diff_ids()[0], "an uncompressed layer's digest is its diff_id");

    runs_under_runc_and_docker(&archive, &dir.path().join("layout"), "plain:1");
}

#[test]
fn zstd_layer_warns_and_runs_under_podman() {
    let dir = scratch_dir();
    big_hello(dir.path());
    let mut digests = Vec::new();
    for jobs in ["1", "2"] {
        let name = format!("z-{jobs}.tar");
        let out = build(&["big", "-o", &name, "--compression", "zstd", "--jobs", jobs, "--json"], dir.path());
        out.assert_success("zeroimage build --compression zstd");
        digests.push(sha256_file(&dir.path().join(&name)));
    }
    assert_eq!(digests[0], digests[1], "zstd output does not depend on --jobs");
    let out = build(&["big", "-o", "z.tar", "--compression", "zstd"], dir.path());
    out.assert_success("zeroimage build --compression zstd");
    assert!(out.stderr_text().contains("warning: zstd") && out.stderr_text().contains("Docker 20.10"));
    let archive = dir.path().join("z.tar");
    assert_eq!(layer_media_type(&archive), "application/vnd.oci.image.layer.v1.tar+zstd");

    let blob_path = dir.path().join("layer.zst");
    fs::write(&blob_path, layer_blob(&archive)).unwrap();
    exec(Command::new("zstd").args(["-t"]).arg(&blob_path))
        .assert_success("zstd -t (install it with scripts/install-test-deps.sh)");

    let podman = Podman::new();
    podman.load(&archive);
    let manifest = skopeo_inspect_raw(&format!("oci-archive:{}", archive.display()));
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let out = podman.run(&config_digest[7..], &[]);
    out.assert_success("podman run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
}

#[test]
fn bad_compression_options_are_refused() {
    let dir = scratch_dir();
    static_hello(dir.path());
    for (args, code, message) in [
        (vec!["--compression", "lz4"], 1, "expected gzip, zstd or none"),
        (vec!["--compression-level", "10"], 1, "gzip takes 0 to 9"),
        (vec!["--compression", "zstd", "--compression-level", "0"], 1, "zstd takes 1 to 19"),
        (vec!["--jobs", "0"], 1, "invalid jobs \"0\""),
        (vec!["--jobs", "4294967295"], 1, "expected 1 to 256 threads"),
        (vec!["--jobs", "-1"], 1, "omit it to use every core"),
    ] {
        let mut all = vec!["hello", "-o", "x.tar"];
        all.extend(&args);
        let out = build(&all, dir.path());
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", out.stderr_text());
        assert!(out.stderr_text().contains(message), "{args:?}: {}", out.stderr_text());
        assert!(!dir.path().join("x.tar").exists(), "{args:?} wrote nothing");
    }
}

/// umoci + runc (via a skopeo-made layout in `layout_dir`) and Docker 20.10 (`docker load`, then
/// `docker run IMAGE`) both run the archive's hello program.
fn runs_under_runc_and_docker(archive: &Path, layout_dir: &Path, image: &str) {
    oci_archive_to_layout(archive, layout_dir, "latest");
    let out = runc_run(layout_dir, "latest", &[]);
    out.assert_success("runc run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
    let docker = DockerDaemon::shared();
    docker.load(archive);
    let out = docker.run(image, &[]);
    out.assert_success("docker run");
    assert_eq!(out.stdout_text(), format!("{HELLO_LINE}\n"));
}
