//! Bundling a dynamically linked program's shared libraries (`--bundle-libs`): find exactly
//! what the loader would load, from this machine or a sysroot, and lay it out as one layer.
//!
//! Resolution follows ld.so (glibc) and musl's loader:
//! - the loader itself, at the program's `PT_INTERP` path;
//! - each object's `DT_NEEDED`, breadth first, skipping names an already loaded object
//!   answers to (its `DT_SONAME`, or the name it was loaded by; musl's loader answers to
//!   `libc.*` and the other names of its C library);
//! - searched in order: `DT_RPATH` of the object and of the objects that loaded it, up to the
//!   program (only when the object has no `DT_RUNPATH`), `DT_RUNPATH`, the sysroot's
//!   `/etc/ld.so.conf` (with its `include`s; musl: `/etc/ld-musl-ARCH.path`), then the default
//!   directories (`/lib/TRIPLET`, `/usr/lib/TRIPLET`, `/lib64`, `/usr/lib64`, `/lib`,
//!   `/usr/lib`; musl: `/lib`, `/usr/local/lib`, `/usr/lib`). `$ORIGIN`, `$LIB` and
//!   `$PLATFORM` are expanded;
//! - a candidate of another ELF class, byte order or machine is skipped, as ld.so does;
//! - paths are resolved inside the sysroot as a chroot would: a symlink never leads out.
//!
//! Beyond `DT_NEEDED`, glibc loads more at run time: before 2.34 the NSS module
//! `libnss_files.so.2` (for `getpwuid` and friends; from 2.34 it is inside libc). Its other
//! libraries (`libm`, `libpthread`, `libdl`, `librt`, `libutil`, `libresolv`) are added too when
//! libc is, so that programs that unpack and load more code (PyInstaller, Nuitka) find a
//! complete C library. Libraries a program only `dlopen`s are named with `--bundle-lib`.
//!
//! In the image, symlinks are resolved: each library is a regular file at the name the loader
//! asks for (`libz.so.1`), in the directory it was found in (a directory from `ld.so.conf`,
//! which the image has no cache for, is replaced by the first default directory). A second
//! name for the same file becomes a symlink to the first, so the loader sees one file.

mod dpkg;
pub(crate) mod elf_dyn;
pub(crate) mod sysroot;

use crate::error::{Error, Result};
use elf_dyn::DynInfo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use sysroot::{normalize, Sysroot};

/// Where the record of bundled libraries is written in the image.
pub const RECORD_PATH: &str = "/usr/share/zeroimage/bundled-libs.json";

/// glibc's libraries besides libc that programs expect to find next to it.
const GLIBC_COMPANIONS: [&str; 6] =
    ["libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2"];

/// What to bundle, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleOptions {
    /// The directory the libraries come from, standing for `/` (`--sysroot`); default `/`,
    /// allowed only for a program of this machine's architecture.
    pub sysroot: Option<PathBuf>,
    /// Libraries the program only `dlopen`s, by soname (`--bundle-lib`, repeatable).
    pub extra: Vec<String>,
}

/// One library added to the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundledLibrary {
    /// Its path in the image.
    pub path: String,
    /// Where it came from: its real path inside the sysroot (symlinks resolved), or on this
    /// machine for a library found next to the program through `$ORIGIN`.
    pub source: String,
    /// `sha256:` digest of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `DT_SONAME`, when it has one.
    pub soname: Option<String>,
    /// Who needs it: the program's or a library's path in the image, `--bundle-lib`, or `glibc`.
    pub needed_by: String,
    /// The Debian package that installed it, when the sysroot has a dpkg database.
    pub package: Option<String>,
    /// That package's version.
    pub version: Option<String>,
}

/// One entry of the libraries' layer (see [`Bundle::entries`]); paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented; its fields are named for what they hold
pub enum BundleEntry {
    /// A directory (mode 0755).
    Dir { path: String },
    /// A regular file with the bytes of `source`, a file on this machine.
    File { path: String, source: PathBuf, mode: u32 },
    /// A symbolic link.
    Symlink { path: String, target: String },
    /// A regular file with `data` (the record).
    Bytes { path: String, data: Vec<u8>, mode: u32 },
}

impl BundleEntry {
    /// Its absolute path in the image.
    pub fn path(&self) -> &str {
        match self {
            BundleEntry::Dir { path }
            | BundleEntry::File { path, .. }
            | BundleEntry::Symlink { path, .. }
            | BundleEntry::Bytes { path, .. } => path,
        }
    }
}

/// The libraries to add for a program: the result of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The sysroot the libraries came from, on this machine.
    pub sysroot: PathBuf,
    /// The program's loader (`PT_INTERP`), `None` for a static program.
    pub interpreter: Option<String>,
    /// Every library, the loader first.
    pub libraries: Vec<BundledLibrary>,
    /// Second names of libraries already in `libraries`: (path, the path it points to).
    pub symlinks: Vec<(String, String)>,
    /// Things worth telling the user (e.g. that a static program needs nothing).
    pub notes: Vec<String>,
    /// Files on this machine, by image path, for the layer.
    files: BTreeMap<String, PathBuf>,
}

impl Bundle {
    /// The record written into the image at [`RECORD_PATH`]: sorted-key JSON with the
    /// interpreter and every library (no paths of this machine, so the same libraries give the
    /// same bytes anywhere).
    pub fn record(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "interpreter": self.interpreter,
            "libraries": self.libraries,
            "symlinks": self.symlinks.iter().map(|(path, target)| serde_json::json!({"path": path, "target": target})).collect::<Vec<_>>(),
        });
        let mut bytes = crate::image::canonical_json(&value);
        bytes.push(b'\n');
        bytes
    }

    /// Whether there is anything to add.
    pub fn is_empty(&self) -> bool {
        self.libraries.is_empty()
    }

    /// The entries of the libraries' layer, in the order they are written: sorted by path,
    /// parents first. Owners are root; modes are 0755 for directories and libraries, 0644 for
    /// the record, 0777 for symlinks.
    pub fn entries(&self) -> Vec<BundleEntry> {
        let mut items: BTreeMap<String, BundleEntry> = BTreeMap::new();
        let all = self
            .files
            .iter()
            .map(|(path, host)| BundleEntry::File { path: path.clone(), source: host.clone(), mode: 0o755 })
            .chain(
                self.symlinks
                    .iter()
                    .map(|(path, target)| BundleEntry::Symlink { path: path.clone(), target: target.clone() }),
            )
            .chain([BundleEntry::Bytes { path: RECORD_PATH.to_string(), data: self.record(), mode: 0o644 }]);
        for entry in all {
            let rel = entry.path().trim_start_matches('/').to_string();
            let parts: Vec<&str> = rel.split('/').collect();
            for i in 1..parts.len() {
                let dir = parts[..i].join("/");
                items.insert(format!("{dir}/"), BundleEntry::Dir { path: format!("/{dir}") });
            }
            items.insert(rel, entry);
        }
        items.into_values().collect()
    }

    /// The layer's [`entries`](Bundle::entries) as the composable model's [`Entry`](crate::Entry)s.
    pub fn layer_entries(&self) -> Vec<crate::Entry> {
        self.entries()
            .into_iter()
            .map(|entry| match entry {
                BundleEntry::Dir { path } => crate::Entry::dir(path),
                BundleEntry::File { path, source, mode } => crate::Entry::file(path, source).with_mode(mode),
                BundleEntry::Symlink { path, target } => crate::Entry::symlink(path, target),
                BundleEntry::Bytes { path, data, mode } => crate::Entry::bytes(path, data).with_mode(mode),
            })
            .collect()
    }

    /// The directories the layer adds (absolute, parents first): a base must not have a
    /// symlink or file at any of them, or the layer would replace it.
    pub fn directories(&self) -> Vec<String> {
        let mut dirs = BTreeSet::new();
        let paths = self.files.keys().chain(self.symlinks.iter().map(|(p, _)| p)).map(String::as_str);
        for path in paths.chain([RECORD_PATH]) {
            let mut dir = path;
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if parent.is_empty() {
                    break;
                }
                dirs.insert(parent.to_string());
                dir = parent;
            }
        }
        dirs.into_iter().collect()
    }

    /// Bytes of library files the layer holds.
    pub fn size(&self) -> u64 {
        self.libraries.iter().map(|l| l.size).sum()
    }
}

/// What the loader needs for `program`, which goes at `path_in_image`: the loader, every
/// library it loads, and what glibc loads at run time. `Ok` with no libraries (and a note)
/// for a static program.
pub fn resolve(program: &Path, path_in_image: &str, options: &BundleOptions) -> Result<Bundle> {
    let mut file = File::open(program).map_err(|e| Error::io("open", program, e))?;
    let info = elf_dyn::read(&mut file).map_err(|e| Error::io("read", program, e))?.ok_or_else(|| {
        Error::ProgramNotRunnable {
            path: program.to_path_buf(),
            reason: "it is not an ELF executable".into(),
            hint: "--bundle-libs needs an ELF program".into(),
        }
    })?;
    let host_machine = host_machine();
    let sysroot = match &options.sysroot {
        Some(path) => Sysroot::open(path)?,
        None if host_machine == Some(info.machine) => Sysroot::open(Path::new("/"))?,
        None => {
            return Err(Error::SysrootRequired {
                path: program.to_path_buf(),
                program_arch: machine_name(info.machine),
                host_arch: std::env::consts::ARCH.to_string(),
            })
        }
    };
    let mut bundle = Bundle {
        sysroot: sysroot.root().to_path_buf(),
        interpreter: info.interpreter.clone(),
        libraries: Vec::new(),
        symlinks: Vec::new(),
        notes: Vec::new(),
        files: BTreeMap::new(),
    };
    if !info.is_dynamic() {
        bundle
            .notes
            .push(format!("{} is statically linked: there are no shared libraries to bundle", program.display()));
        return Ok(bundle);
    }
    let program_dir = std::fs::canonicalize(program)
        .map_err(|e| Error::io("open", program, e))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut resolver = Resolver::new(&sysroot, &info, program, path_in_image, program_dir);
    resolver.run(&options.extra)?;
    resolver.finish(&mut bundle)?;
    Ok(bundle)
}

/// An ELF file the loader has loaded (in our simulation).
struct Object {
    /// Its path in the image.
    image_path: String,
    /// Where `$ORIGIN` is for it: (in the sysroot or on this machine, in the image).
    origin: Dir,
    /// The name it was asked for by (what `DT_NEEDED` said).
    name: String,
    info: DynInfo,
    /// The object that loaded it (for the `DT_RPATH` chain); `None` for the program.
    loader: Option<usize>,
    /// Who needs it, for the record.
    needed_by: String,
    /// (real path inside the sysroot or on this machine, the file on this machine), `None`
    /// for the program itself.
    source: Option<(String, PathBuf)>,
}

/// A directory to search.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dir {
    /// An absolute directory inside the sysroot, the same path in the image.
    Sysroot(String),
    /// A directory on this machine (the program's own `$ORIGIN`), and where it is in the image.
    Host(PathBuf, String),
}

impl Dir {
    fn image(&self) -> &str {
        match self {
            Dir::Sysroot(dir) | Dir::Host(_, dir) => dir,
        }
    }

    fn display(&self) -> String {
        match self {
            Dir::Sysroot(dir) => dir.clone(),
            Dir::Host(host, image) => format!("{} ({image} in the image)", host.display()),
        }
    }
}

/// Where a search path came from: it decides where a library found there goes in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    RunPath,
    LdSoConf,
    Default,
}

struct Resolver<'a> {
    sysroot: &'a Sysroot,
    program: &'a Path,
    musl: Option<String>,
    defaults: Vec<String>,
    ld_so_conf: Vec<String>,
    objects: Vec<Object>,
    /// Real source path → index of the object loaded from it.
    by_source: BTreeMap<String, usize>,
    symlinks: Vec<(String, String)>,
}

impl<'a> Resolver<'a> {
    fn new(sysroot: &'a Sysroot, info: &DynInfo, program: &'a Path, path_in_image: &str, program_dir: PathBuf) -> Self {
        let musl = info.interpreter.as_deref().and_then(|interp| {
            let name = interp.rsplit('/').next()?;
            Some(name.strip_prefix("ld-musl-")?.strip_suffix(".so.1")?.to_string())
        });
        let (defaults, ld_so_conf) = match &musl {
            Some(arch) => (Vec::new(), sysroot.musl_path(arch)),
            None => (glibc_default_dirs(info), sysroot.ld_so_conf()),
        };
        let image_dir = path_in_image.rsplit_once('/').map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        let program_object = Object {
            image_path: path_in_image.to_string(),
            origin: Dir::Host(program_dir, image_dir.to_string()),
            name: path_in_image.to_string(),
            info: info.clone(),
            loader: None,
            needed_by: String::new(),
            source: None,
        };
        Resolver {
            sysroot,
            program,
            musl,
            defaults,
            ld_so_conf,
            objects: vec![program_object],
            by_source: BTreeMap::new(),
            symlinks: Vec::new(),
        }
    }

    fn program_info(&self) -> &DynInfo {
        &self.objects[0].info
    }

    fn run(&mut self, extra: &[String]) -> Result<()> {
        // The loader.
        if let Some(interp) = self.program_info().interpreter.clone() {
            let found = self.sysroot.resolve(&interp).and_then(|real| {
                let host = self.sysroot.host(&real);
                let info = read_info(&host).ok()??;
                Some((real, host, info))
            });
            match found {
                Some((real, host, info)) if info.same_kind(self.program_info()) => {
                    let origin = Dir::Sysroot(parent(&interp));
                    self.add(interp.clone(), origin, interp.clone(), info, Some(0), (real, host));
                }
                _ => {
                    return Err(Error::LibraryNotFound {
                        name: interp.clone(),
                        needed_by: format!("{} (its loader, PT_INTERP)", self.program.display()),
                        sysroot: self.sysroot.root().to_path_buf(),
                        searched: vec![interp],
                        skipped: Vec::new(),
                    })
                }
            }
        }
        self.load_needed(0)?;
        // What glibc loads at run time, and what the caller names.
        if let Some(libc) = self.objects.iter().position(|o| o.info.soname.as_deref() == Some("libc.so.6")) {
            let mut wanted: Vec<&str> = GLIBC_COMPANIONS.to_vec();
            if !self.objects[libc].info.defines_glibc_2_34 {
                wanted.push("libnss_files.so.2");
            }
            for name in wanted {
                if !self.is_loaded(name) {
                    // Optional: a glibc without one of them (e.g. a trimmed sysroot) still runs most programs.
                    if let Ok(Some(found)) = self.search(name, libc) {
                        self.load(name, found, libc, "glibc".into());
                    }
                }
            }
            self.load_needed(1)?;
        }
        for name in extra {
            if name.is_empty() || name.contains('\0') {
                return Err(Error::InvalidOption {
                    option: "bundle-lib",
                    value: name.clone(),
                    reason: "expected a library's soname, e.g. libnss_dns.so.2".into(),
                });
            }
            if !self.is_loaded(name) {
                let found = self.find(name, 0, "--bundle-lib")?;
                self.load(name, found, 0, "--bundle-lib".into());
            }
        }
        self.load_needed(1)
    }

    /// Load the `DT_NEEDED` of every object from `start` on, breadth first (objects loaded on
    /// the way are processed in turn).
    fn load_needed(&mut self, start: usize) -> Result<()> {
        let mut i = start;
        while i < self.objects.len() {
            for name in self.objects[i].info.needed.clone() {
                if self.is_loaded(&name) {
                    continue;
                }
                let who = if i == 0 { self.program.display().to_string() } else { self.objects[i].image_path.clone() };
                let found = self.find(&name, i, &who)?;
                let needed_by = self.objects[i].image_path.clone();
                self.load(&name, found, i, needed_by);
            }
            i += 1;
        }
        Ok(())
    }

    /// Whether an object loaded already answers to `name`. musl's loader is also the C
    /// library: it answers to `libc.*`, `libpthread.*`, `librt.*`, `libm.*`, `libdl.*`,
    /// `libutil.*` and `libxnet.*` itself, as its `load_library` does.
    fn is_loaded(&self, name: &str) -> bool {
        if self.musl.is_some() && self.objects.len() > 1 {
            let rest = name.strip_prefix("lib").unwrap_or_default();
            let reserved = ["c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."];
            if reserved.iter().any(|r| rest.starts_with(r)) {
                return true;
            }
        }
        self.objects.iter().skip(1).any(|o| o.name == name || o.info.soname.as_deref() == Some(name))
    }

    fn find(&self, name: &str, requester: usize, who: &str) -> Result<Found> {
        match self.search(name, requester)? {
            Some(found) => Ok(found),
            None => {
                let (searched, skipped) = self.searched(name, requester);
                Err(Error::LibraryNotFound {
                    name: name.to_string(),
                    needed_by: who.to_string(),
                    sysroot: self.sysroot.root().to_path_buf(),
                    searched,
                    skipped,
                })
            }
        }
    }

    /// The directories searched for `name` and the candidates skipped, for an error.
    fn searched(&self, name: &str, requester: usize) -> (Vec<String>, Vec<String>) {
        let dirs = self.search_dirs(requester);
        let skipped = dirs
            .iter()
            .filter_map(|(dir, _)| match self.candidate(dir, name) {
                Candidate::WrongKind(path, why) => Some(format!("{path} ({why})")),
                _ => None,
            })
            .collect();
        (dirs.iter().map(|(d, _)| d.display()).collect(), skipped)
    }

    fn search(&self, name: &str, requester: usize) -> Result<Option<Found>> {
        if name.contains('/') {
            // A path: used as it is (relative paths would depend on the working directory).
            if !name.starts_with('/') {
                return Ok(None);
            }
            let dir = Dir::Sysroot(parent(name));
            let base = name.rsplit('/').next().unwrap_or(name);
            return Ok(match self.candidate(&dir, base) {
                Candidate::Found(real, host, info) => {
                    Some(Found { image_path: normalize(name), origin: dir, real, host, info })
                }
                _ => None,
            });
        }
        for (dir, from) in self.search_dirs(requester) {
            if let Candidate::Found(real, host, info) = self.candidate(&dir, name) {
                let image_dir = match from {
                    From::LdSoConf if self.musl.is_none() && !self.defaults.contains(&dir.image().to_string()) => {
                        self.first_default_dir()
                    }
                    _ => dir.image().to_string(),
                };
                let image_path = normalize(&format!("{image_dir}/{name}"));
                return Ok(Some(Found { image_path, origin: dir, real, host, info }));
            }
        }
        Ok(None)
    }

    /// The first default directory the sysroot has (where libraries from `ld.so.conf`
    /// directories go, since the image has no `ld.so.cache`).
    fn first_default_dir(&self) -> String {
        self.defaults
            .iter()
            .find(|d| self.sysroot.resolve(d).is_some())
            .or(self.defaults.first())
            .cloned()
            .unwrap_or_else(|| "/lib".into())
    }

    fn candidate(&self, dir: &Dir, name: &str) -> Candidate {
        let (real, host) = match dir {
            Dir::Sysroot(dir) => match self.sysroot.resolve(&format!("{dir}/{name}")) {
                Some(real) => {
                    let host = self.sysroot.host(&real);
                    (real, host)
                }
                None => return Candidate::Missing,
            },
            Dir::Host(dir, _) => match std::fs::canonicalize(dir.join(name)) {
                Ok(host) => (host.display().to_string(), host),
                Err(_) => return Candidate::Missing,
            },
        };
        if !host.is_file() {
            return Candidate::Missing;
        }
        match read_info(&host) {
            Ok(Some(info)) if info.same_kind(self.program_info()) && info.elf_type == 3 => {
                Candidate::Found(real, host, info)
            }
            Ok(Some(info)) => {
                let why = if info.same_kind(self.program_info()) {
                    "not a shared library".to_string()
                } else {
                    format!(
                        "wrong architecture: {}-bit {}",
                        if info.is_64 { 64 } else { 32 },
                        machine_name(info.machine)
                    )
                };
                Candidate::WrongKind(host.display().to_string(), why)
            }
            Ok(None) => Candidate::WrongKind(host.display().to_string(), "not an ELF file".into()),
            Err(_) => Candidate::Missing,
        }
    }

    /// The directories ld.so searches for a `DT_NEEDED` of object `requester`, in order.
    fn search_dirs(&self, requester: usize) -> Vec<(Dir, From)> {
        let mut dirs = Vec::new();
        let object = &self.objects[requester];
        if object.info.runpath.is_none() {
            // DT_RPATH of the object, of the object that loaded it, … up to the program.
            let mut next = Some(requester);
            let mut seen_program = false;
            while let Some(i) = next {
                let o = &self.objects[i];
                seen_program |= i == 0;
                if o.info.runpath.is_none() {
                    if let Some(rpath) = &o.info.rpath {
                        dirs.extend(self.expand(rpath, o).into_iter().map(|d| (d, From::RunPath)));
                    }
                }
                next = o.loader.filter(|&l| l != i);
            }
            if !seen_program && self.objects[0].info.runpath.is_none() {
                if let Some(rpath) = &self.objects[0].info.rpath {
                    dirs.extend(self.expand(rpath, &self.objects[0]).into_iter().map(|d| (d, From::RunPath)));
                }
            }
        }
        if let Some(runpath) = &object.info.runpath {
            dirs.extend(self.expand(runpath, object).into_iter().map(|d| (d, From::RunPath)));
        }
        dirs.extend(self.ld_so_conf.iter().map(|d| (Dir::Sysroot(d.clone()), From::LdSoConf)));
        dirs.extend(self.defaults.iter().map(|d| (Dir::Sysroot(d.clone()), From::Default)));
        let mut unique: Vec<(Dir, From)> = Vec::new();
        for (dir, from) in dirs {
            if !unique.iter().any(|(d, _)| *d == dir) {
                unique.push((dir, from));
            }
        }
        unique
    }

    /// A `DT_RPATH`/`DT_RUNPATH` value as directories, with `$ORIGIN`, `$LIB` and `$PLATFORM`
    /// expanded. Empty entries and relative ones (which depend on the working directory) are
    /// left out.
    fn expand(&self, value: &str, object: &Object) -> Vec<Dir> {
        let lib = if object.info.is_64 && self.musl.is_none() { "lib64" } else { "lib" };
        value
            .split(':')
            .filter(|d| !d.is_empty())
            .filter_map(|d| {
                let d = d.replace("${LIB}", lib).replace("$LIB", lib);
                let d = d.replace("${PLATFORM}", "").replace("$PLATFORM", "");
                for token in ["${ORIGIN}", "$ORIGIN"] {
                    if let Some(rest) = d.strip_prefix(token) {
                        return Some(match &object.origin {
                            Dir::Sysroot(dir) => Dir::Sysroot(normalize(&format!("{dir}/{rest}"))),
                            Dir::Host(host, image) => Dir::Host(
                                host.join(rest.trim_start_matches('/')),
                                normalize(&format!("{image}/{rest}")),
                            ),
                        });
                    }
                }
                (d.starts_with('/') && !d.contains('$')).then(|| Dir::Sysroot(normalize(&d)))
            })
            .collect()
    }

    fn load(&mut self, name: &str, found: Found, loader: usize, needed_by: String) {
        if let Some(&existing) = self.by_source.get(&found.real) {
            // The same file under a second name: a symlink to the first, so the loader sees one file.
            let target = self.objects[existing].image_path.clone();
            if target != found.image_path && !self.symlinks.iter().any(|(p, _)| *p == found.image_path) {
                self.symlinks.push((found.image_path, target));
            }
            return;
        }
        self.add(found.image_path, found.origin, name.to_string(), found.info, Some(loader), (found.real, found.host));
        self.objects.last_mut().expect("just added").needed_by = needed_by;
    }

    fn add(
        &mut self,
        image_path: String,
        origin: Dir,
        name: String,
        info: DynInfo,
        loader: Option<usize>,
        source: (String, PathBuf),
    ) {
        self.by_source.insert(source.0.clone(), self.objects.len());
        self.objects.push(Object {
            image_path,
            origin,
            name,
            info,
            loader,
            needed_by: format!("{} (PT_INTERP)", self.objects[0].image_path),
            source: Some(source),
        });
    }

    /// Hash every library and look up its package; fill `bundle`.
    fn finish(self, bundle: &mut Bundle) -> Result<()> {
        let sources: Vec<String> = self.objects.iter().filter_map(|o| o.source.as_ref().map(|s| s.0.clone())).collect();
        let packages = dpkg::owners(self.sysroot, &sources);
        for object in self.objects.into_iter().skip(1) {
            let Some((real, host)) = object.source else { continue };
            let (sha256, size) = sha256_file(&host)?;
            let package = packages.get(&real);
            bundle.files.insert(object.image_path.clone(), host);
            bundle.libraries.push(BundledLibrary {
                path: object.image_path,
                source: real,
                sha256,
                size,
                soname: object.info.soname,
                needed_by: object.needed_by,
                package: package.map(|p| p.name.clone()),
                version: package.map(|p| p.version.clone()),
            });
        }
        let mut seen = BTreeSet::new();
        bundle.symlinks = self.symlinks.into_iter().filter(|(p, _)| seen.insert(p.clone())).collect();
        bundle.symlinks.sort();
        Ok(())
    }
}

struct Found {
    image_path: String,
    origin: Dir,
    real: String,
    host: PathBuf,
    info: DynInfo,
}

enum Candidate {
    Missing,
    WrongKind(String, String),
    Found(String, PathBuf, DynInfo),
}

/// `sha256:` digest and size of a file, read once in large buffers.
fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; crate::layer::BUFFER_SIZE];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", path, e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{:x}", hasher.finalize()), size))
}

fn read_info(path: &Path) -> std::io::Result<Option<DynInfo>> {
    elf_dyn::read(&mut File::open(path)?)
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.to_string(),
        _ => "/".to_string(),
    }
}

/// glibc's default directories for a program: the Debian multiarch ones, then the
/// Fedora-style `lib64` ones for 64-bit programs, then `/lib` and `/usr/lib`.
fn glibc_default_dirs(info: &DynInfo) -> Vec<String> {
    let mut dirs = Vec::new();
    if let Some(triplet) = multiarch_triplet(info) {
        dirs.push(format!("/lib/{triplet}"));
        dirs.push(format!("/usr/lib/{triplet}"));
    }
    if info.is_64 {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// Debian's multiarch triplet for an ELF machine.
fn multiarch_triplet(info: &DynInfo) -> Option<&'static str> {
    Some(match (info.machine, info.is_64, info.little_endian) {
        (62, true, _) => "x86_64-linux-gnu",
        (3, false, _) => "i386-linux-gnu",
        (183, true, true) => "aarch64-linux-gnu",
        (40, false, true) => "arm-linux-gnueabihf",
        (21, true, true) => "powerpc64le-linux-gnu",
        (22, true, _) => "s390x-linux-gnu",
        (243, true, _) => "riscv64-linux-gnu",
        (258, true, _) => "loongarch64-linux-gnu",
        (8, true, true) => "mips64el-linux-gnuabi64",
        _ => return None,
    })
}

/// The ELF machine of this build of zeroimage (the machine it runs on).
fn host_machine() -> Option<u16> {
    Some(match std::env::consts::ARCH {
        "x86_64" => 62,
        "x86" => 3,
        "aarch64" => 183,
        "arm" => 40,
        "powerpc64" => 21,
        "s390x" => 22,
        "riscv64" => 243,
        "loongarch64" => 258,
        _ => return None,
    })
}

fn machine_name(machine: u16) -> String {
    match machine {
        62 => "x86-64".into(),
        3 => "x86".into(),
        183 => "arm64".into(),
        40 => "arm".into(),
        21 => "ppc64".into(),
        22 => "s390x".into(),
        243 => "riscv64".into(),
        258 => "loong64".into(),
        other => format!("ELF machine {other}"),
    }
}

#[cfg(test)]
mod tests;
