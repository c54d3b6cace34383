//! The resolver against sysroots made of small fixture ELF files.

use super::elf_dyn::fixture::Elf;
use super::*;
use std::fs;
use std::os::unix::fs::symlink;

const X86_64: u16 = 62;
const AARCH64: u16 = 183;
const LD: &str = "/lib64/ld-linux-x86-64.so.2";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A merged-/usr Debian-like sysroot with a glibc ≥ 2.34, libz and libssl.
    fn new() -> Fixture {
        let f = Fixture { dir: tempfile::tempdir().unwrap() };
        for d in ["root/usr/lib/x86_64-linux-gnu", "root/usr/lib64", "root/etc"] {
            fs::create_dir_all(f.dir.path().join(d)).unwrap();
        }
        symlink("usr/lib", f.root().join("lib")).unwrap();
        symlink("usr/lib64", f.root().join("lib64")).unwrap();
        let multiarch = "/usr/lib/x86_64-linux-gnu";
        f.elf(&format!("{multiarch}/ld-linux-x86-64.so.2"), Elf { soname: Some("ld-linux-x86-64.so.2"), ..lib() });
        symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", f.root().join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
        f.elf(
            &format!("{multiarch}/libc.so.6"),
            Elf {
                soname: Some("libc.so.6"),
                needed: vec!["ld-linux-x86-64.so.2"],
                extra_strings: vec!["GLIBC_2.34"],
                ..lib()
            },
        );
        f.elf(&format!("{multiarch}/libm.so.6"), Elf { soname: Some("libm.so.6"), needed: vec!["libc.so.6"], ..lib() });
        f.elf(
            &format!("{multiarch}/libz.so.1.2.13"),
            Elf { soname: Some("libz.so.1"), needed: vec!["libc.so.6"], ..lib() },
        );
        symlink("libz.so.1.2.13", f.root().join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap();
        f.elf(
            &format!("{multiarch}/libssl.so.3"),
            Elf { soname: Some("libssl.so.3"), needed: vec!["libcrypto.so.3", "libc.so.6"], ..lib() },
        );
        f.elf(
            &format!("{multiarch}/libcrypto.so.3"),
            Elf { soname: Some("libcrypto.so.3"), needed: vec!["libc.so.6"], ..lib() },
        );
        f
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn elf(&self, path: &str, elf: Elf<'_>) {
        let host = self.root().join(path.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, elf.bytes()).unwrap();
    }

    /// The program, outside the sysroot.
    fn program(&self, elf: Elf<'_>) -> PathBuf {
        let path = self.dir.path().join("app/bin/prog");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, elf.bytes()).unwrap();
        path
    }

    fn resolve(&self, program: &Path, extra: &[&str]) -> Result<Bundle> {
        let options =
            BundleOptions { sysroot: Some(self.root()), extra: extra.iter().map(|s| s.to_string()).collect() };
        resolve(program, "/app/prog", &options)
    }
}

fn lib() -> Elf<'static> {
    Elf { machine: X86_64, ..Elf::default() }
}

fn prog(needed: Vec<&'static str>) -> Elf<'static> {
    Elf { machine: X86_64, interp: Some(LD), needed, ..Elf::default() }
}

fn paths(bundle: &Bundle) -> Vec<&str> {
    bundle.libraries.iter().map(|l| l.path.as_str()).collect()
}

#[test]
fn resolves_the_loader_and_needed_libraries_in_load_order() {
    let f = Fixture::new();
    let program = f.program(prog(vec!["libssl.so.3", "libz.so.1", "libc.so.6"]));
    let bundle = f.resolve(&program, &[]).unwrap();
    assert_eq!(
        paths(&bundle),
        [
            LD,
            "/lib/x86_64-linux-gnu/libssl.so.3",
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/lib/x86_64-linux-gnu/libm.so.6",
        ]
    );
    let z = &bundle.libraries[2];
    assert_eq!(z.source, "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "symlinks resolved inside the sysroot");
    assert_eq!(z.soname.as_deref(), Some("libz.so.1"));
    assert_eq!(z.needed_by, "/app/prog");
    assert_eq!(bundle.libraries[0].needed_by, "/app/prog (PT_INTERP)");
    let bytes = fs::read(f.root().join("usr/lib/x86_64-linux-gnu/libz.so.1.2.13")).unwrap();
    assert_eq!(z.sha256, crate::digest::sha256_digest(&bytes));
    assert_eq!(z.size, bytes.len() as u64);
    assert_eq!(bundle.libraries[4].needed_by, "/lib/x86_64-linux-gnu/libssl.so.3");
    assert_eq!(bundle.libraries[5].needed_by, "glibc");
    // libc's DT_NEEDED ld-linux-x86-64.so.2 is the loader itself (its soname): no second copy.
    assert!(bundle.symlinks.is_empty(), "{:?}", bundle.symlinks);
    assert_eq!(bundle.interpreter.as_deref(), Some(LD));
    // The record names no path of this machine.
    let record = String::from_utf8(bundle.record()).unwrap();
    assert!(!record.contains(&f.dir.path().display().to_string()), "{record}");
    assert!(record.contains("\"soname\":\"libz.so.1\""), "{record}");
}

#[test]
fn a_missing_library_names_itself_who_needs_it_and_the_dirs() {
    let f = Fixture::new();
    fs::remove_file(f.root().join("usr/lib/x86_64-linux-gnu/libcrypto.so.3")).unwrap();
    let program = f.program(prog(vec!["libssl.so.3"]));
    let err = f.resolve(&program, &[]).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    let report = err.report();
    for want in [
        "libcrypto.so.3",
        "needed by /lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "--sysroot",
    ] {
        assert!(report.contains(want), "{want} not in {report}");
    }
}

#[test]
fn a_missing_loader_is_an_error() {
    let f = Fixture::new();
    let program = f.program(Elf { interp: Some("/lib/ld-other.so.1"), ..prog(vec![]) });
    let report = f.resolve(&program, &[]).unwrap_err().report();
    assert!(report.contains("/lib/ld-other.so.1") && report.contains("PT_INTERP"), "{report}");
}

#[test]
fn wrong_architecture_candidates_are_skipped() {
    let f = Fixture::new();
    // An arm64 libz first on the search path (ld.so.conf), then the right one in the default dirs.
    f.elf("/opt/arm/libz.so.1", Elf { machine: AARCH64, soname: Some("libz.so.1"), ..Elf::default() });
    f.elf("/opt/arm/libonly.so", Elf { machine: AARCH64, ..Elf::default() });
    fs::write(f.root().join("etc/ld.so.conf"), "/opt/arm\n").unwrap();
    let program = f.program(prog(vec!["libz.so.1"]));
    let bundle = f.resolve(&program, &[]).unwrap();
    assert_eq!(bundle.libraries[1].source, "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13");
    // When only the wrong one exists, the error says it was skipped and why.
    let program = f.program(prog(vec!["libonly.so"]));
    let report = f.resolve(&program, &[]).unwrap_err().report();
    assert!(report.contains("skipped") && report.contains("wrong architecture: 64-bit arm64"), "{report}");
}

#[test]
fn a_32_bit_library_is_skipped_for_a_64_bit_program() {
    let f = Fixture::new();
    f.elf("/usr/lib/x86_64-linux-gnu/libq.so", Elf { is_32: true, machine: 3, ..Elf::default() });
    f.elf("/usr/lib/libq.so", lib());
    let bundle = f.resolve(&f.program(prog(vec!["libq.so"])), &[]).unwrap();
    assert_eq!(bundle.libraries[1].path, "/lib/libq.so");
}

#[test]
fn symlinks_never_leave_the_sysroot() {
    let f = Fixture::new();
    fs::write(f.dir.path().join("libevil.so"), lib().bytes()).unwrap();
    symlink("../../../../../libevil.so", f.root().join("usr/lib/x86_64-linux-gnu/libevil.so")).unwrap();
    symlink(f.dir.path().join("libevil.so"), f.root().join("usr/lib/libevil2.so")).unwrap();
    for name in ["libevil.so", "libevil2.so"] {
        let err = f.resolve(&f.program(prog(vec![name])), &[]).unwrap_err();
        assert!(matches!(&err, Error::LibraryNotFound { name: n, .. } if n == name), "{err:?}");
    }
}

#[test]
fn runpath_with_origin_next_to_the_program() {
    let f = Fixture::new();
    let program = f.program(Elf { runpath: Some("$ORIGIN/../lib"), ..prog(vec!["libapp.so"]) });
    fs::create_dir_all(f.dir.path().join("app/lib")).unwrap();
    fs::write(f.dir.path().join("app/lib/libapp.so"), Elf { needed: vec!["libz.so.1"], ..lib() }.bytes()).unwrap();
    let bundle = f.resolve(&program, &[]).unwrap();
    let app = bundle.libraries.iter().find(|l| l.path.ends_with("libapp.so")).unwrap();
    // The program goes to /app/prog, so $ORIGIN/../lib is /lib in the image.
    assert_eq!(app.path, "/lib/libapp.so");
    assert!(app.source.ends_with("app/lib/libapp.so"), "{}", app.source);
}

#[test]
fn rpath_is_searched_before_ld_so_conf_and_runpath_hides_it() {
    let f = Fixture::new();
    f.elf("/opt/one/libz.so.1", lib());
    let program = f.program(Elf { rpath: Some("/opt/one"), ..prog(vec!["libz.so.1"]) });
    assert_eq!(f.resolve(&program, &[]).unwrap().libraries[1].path, "/opt/one/libz.so.1");
    // With DT_RUNPATH too, DT_RPATH is ignored.
    let program = f.program(Elf { rpath: Some("/opt/one"), runpath: Some("/opt/none"), ..prog(vec!["libz.so.1"]) });
    assert_eq!(f.resolve(&program, &[]).unwrap().libraries[1].path, "/lib/x86_64-linux-gnu/libz.so.1");
}

#[test]
fn ld_so_conf_libraries_go_to_a_default_directory() {
    let f = Fixture::new();
    f.elf("/opt/vendor/lib/libv.so.1", Elf { needed: vec!["libc.so.6"], ..lib() });
    fs::create_dir_all(f.root().join("etc/ld.so.conf.d")).unwrap();
    fs::write(f.root().join("etc/ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n").unwrap();
    fs::write(f.root().join("etc/ld.so.conf.d/vendor.conf"), "/opt/vendor/lib\n").unwrap();
    let bundle = f.resolve(&f.program(prog(vec!["libv.so.1"])), &[]).unwrap();
    assert_eq!(bundle.libraries[1].path, "/lib/x86_64-linux-gnu/libv.so.1");
    assert_eq!(bundle.libraries[1].source, "/opt/vendor/lib/libv.so.1");
}

#[test]
fn a_second_name_for_the_same_file_is_a_symlink() {
    let f = Fixture::new();
    symlink("libz.so.1.2.13", f.root().join("usr/lib/x86_64-linux-gnu/libz-alias.so")).unwrap();
    let bundle = f.resolve(&f.program(prog(vec!["libz.so.1", "libz-alias.so"])), &[]).unwrap();
    assert_eq!(
        bundle.symlinks,
        [("/lib/x86_64-linux-gnu/libz-alias.so".to_string(), "/lib/x86_64-linux-gnu/libz.so.1".to_string())]
    );
}

#[test]
fn bundle_lib_adds_dlopened_libraries_and_their_needs() {
    let f = Fixture::new();
    let program = f.program(prog(vec!["libc.so.6"]));
    let bundle = f.resolve(&program, &["libssl.so.3"]).unwrap();
    let ssl = bundle.libraries.iter().find(|l| l.path.ends_with("libssl.so.3")).unwrap();
    assert_eq!(ssl.needed_by, "--bundle-lib");
    assert!(paths(&bundle).contains(&"/lib/x86_64-linux-gnu/libcrypto.so.3"));
    let report = f.resolve(&program, &["libnope.so.9"]).unwrap_err().report();
    assert!(report.contains("libnope.so.9 needed by --bundle-lib"), "{report}");
}

#[test]
fn old_glibc_gets_its_nss_files_module() {
    let f = Fixture::new();
    let libc = Elf { soname: Some("libc.so.6"), needed: vec!["ld-linux-x86-64.so.2"], ..lib() };
    f.elf("/usr/lib/x86_64-linux-gnu/libc.so.6", libc);
    f.elf("/usr/lib/x86_64-linux-gnu/libnss_files.so.2", Elf { needed: vec!["libc.so.6"], ..lib() });
    let bundle = f.resolve(&f.program(prog(vec!["libc.so.6"])), &[]).unwrap();
    let nss = bundle.libraries.iter().find(|l| l.path.ends_with("libnss_files.so.2")).expect("nss module");
    assert_eq!(nss.needed_by, "glibc");
    // A glibc ≥ 2.34 has it inside libc: not added.
    let f = Fixture::new();
    f.elf("/usr/lib/x86_64-linux-gnu/libnss_files.so.2", lib());
    let bundle = f.resolve(&f.program(prog(vec!["libc.so.6"])), &[]).unwrap();
    assert!(!paths(&bundle).iter().any(|p| p.contains("nss")), "{:?}", paths(&bundle));
}

#[test]
fn musl_uses_its_own_search_path() {
    let f = Fixture::new();
    let ld = "/lib/ld-musl-x86_64.so.1";
    f.elf("/usr/lib/ld-musl-x86_64.so.1", Elf { soname: Some("libc.musl-x86_64.so.1"), ..lib() });
    symlink("ld-musl-x86_64.so.1", f.root().join("usr/lib/libc.musl-x86_64.so.1")).unwrap();
    f.elf("/usr/local/lib/libz.so.1", lib());
    let program = f.program(Elf { interp: Some(ld), ..prog(vec!["libz.so.1", "libc.musl-x86_64.so.1"]) });
    let bundle = f.resolve(&program, &[]).unwrap();
    assert_eq!(paths(&bundle), [ld, "/usr/local/lib/libz.so.1"]);
    // musl-gcc programs need `libc.so`, which musl's loader answers to itself (Debian's has no soname).
    let program = f.program(Elf { interp: Some(ld), ..prog(vec!["libc.so", "libm.so", "libpthread.so.0"]) });
    assert_eq!(paths(&f.resolve(&program, &[]).unwrap()), [ld]);
}

#[test]
fn static_programs_need_nothing() {
    let f = Fixture::new();
    let program = f.program(Elf { machine: X86_64, ..Elf::default() });
    let bundle = f.resolve(&program, &[]).unwrap();
    assert!(bundle.is_empty());
    assert!(bundle.notes[0].contains("statically linked"), "{:?}", bundle.notes);
}

#[test]
fn foreign_programs_need_a_sysroot() {
    let f = Fixture::new();
    let program = f.program(Elf { machine: AARCH64, interp: Some("/lib/ld-linux-aarch64.so.1"), ..Elf::default() });
    let err = resolve(&program, "/prog", &BundleOptions::default()).unwrap_err();
    assert!(matches!(err, Error::SysrootRequired { .. }), "{err:?}");
    assert!(err.report().contains("--sysroot"), "{}", err.report());
    let options = BundleOptions { sysroot: Some(f.dir.path().join("nope")), extra: vec![] };
    let err = resolve(&program, "/prog", &options).unwrap_err();
    assert!(matches!(err, Error::SysrootNotFound { .. }), "{err:?}");
}

#[test]
fn layer_entries_are_sorted_with_parents_first() {
    let f = Fixture::new();
    let bundle = f.resolve(&f.program(prog(vec!["libz.so.1"])), &[]).unwrap();
    let options = crate::LayerOptions {
        mtime: 42,
        compression: crate::Compression::none(),
        temp_dir: Some(f.dir.path().to_path_buf()),
        ..crate::LayerOptions::default()
    };
    let layer = crate::Layer::from_entries(bundle.layer_entries(), &options).unwrap();
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(&mut layer.open().unwrap(), &mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let entries: Vec<(String, u32, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), e.header().mtime().unwrap())
        })
        .collect();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "lib/",
            "lib/x86_64-linux-gnu/",
            "lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libm.so.6",
            "lib/x86_64-linux-gnu/libz.so.1",
            "lib64/",
            "lib64/ld-linux-x86-64.so.2",
            "usr/",
            "usr/share/",
            "usr/share/zeroimage/",
            "usr/share/zeroimage/bundled-libs.json",
        ]
    );
    assert!(entries.iter().all(|e| e.2 == 42));
    assert_eq!(entries.last().unwrap().1, 0o644);
}
