//! A sysroot: a directory that stands for `/` of the machine the program runs on. Paths inside
//! it are resolved the way a `chroot` would (absolute symlinks start again at the sysroot,
//! `..` stops at it), so nothing outside is ever read. Also the loader's configuration files
//! read from it: glibc's `/etc/ld.so.conf` (with `include`) and musl's `/etc/ld-musl-ARCH.path`.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

/// Symlinks followed while resolving one path, as the kernel allows (`ELOOP` after 40).
const MAX_SYMLINKS: usize = 40;
/// Nested `include` levels in `ld.so.conf`.
const MAX_INCLUDE_DEPTH: usize = 8;
/// Configuration files read for one `ld.so.conf` (includes can fan out).
const MAX_CONF_FILES: usize = 256;
/// Bytes of one loader configuration file we read.
const MAX_CONF_BYTES: u64 = 1 << 20;

/// A directory standing for `/`.
#[derive(Debug, Clone)]
pub(crate) struct Sysroot {
    root: PathBuf,
}

impl Sysroot {
    /// The sysroot at `path`, which must be an existing directory (`option` names the option
    /// for the error).
    pub(crate) fn open(path: &Path) -> Result<Sysroot> {
        let root = fs::canonicalize(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::SysrootNotFound { path: path.to_path_buf() },
            _ => Error::io("open the sysroot", path, e),
        })?;
        if !root.is_dir() {
            return Err(Error::SysrootNotFound { path: path.to_path_buf() });
        }
        Ok(Sysroot { root })
    }

    /// The sysroot directory on this machine.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where the absolute path `inside` (already resolved) is on this machine.
    pub(crate) fn host(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Resolve the absolute path `path` inside the sysroot, following symlinks as a chroot
    /// would: the canonical path inside (`/usr/lib/x86_64-linux-gnu/libz.so.1.2.13`), or
    /// `None` when it does not exist, loops, or a parent is not a directory.
    pub(crate) fn resolve(&self, path: &str) -> Option<String> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> = path.split('/').map(str::to_string).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = format!("/{}", done.iter().chain([&part]).cloned().collect::<Vec<_>>().join("/"));
            let host = self.host(&candidate);
            let meta = fs::symlink_metadata(&host).ok()?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return None;
                }
                let target = fs::read_link(&host).ok()?;
                let target = target.to_str()?;
                if target.starts_with('/') {
                    done.clear();
                }
                for (i, piece) in target.split('/').enumerate() {
                    todo.insert(i, piece.to_string());
                }
            } else {
                done.push(part);
            }
        }
        Some(format!("/{}", done.join("/")))
    }

    /// The directories listed by `/etc/ld.so.conf` and the files it includes, in order.
    pub(crate) fn ld_so_conf(&self) -> Vec<String> {
        let mut dirs = Vec::new();
        let mut budget = MAX_CONF_FILES;
        self.read_conf("/etc/ld.so.conf", 0, &mut budget, &mut dirs);
        dedup(dirs)
    }

    fn read_conf(&self, path: &str, depth: usize, budget: &mut usize, dirs: &mut Vec<String>) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Some(text) = self.read_small(path) else { return };
        let here = path.rsplit_once('/').map_or("/", |(dir, _)| if dir.is_empty() { "/" } else { dir });
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if let Some(pattern) = line.strip_prefix("include").filter(|rest| rest.starts_with([' ', '\t'])) {
                if depth >= MAX_INCLUDE_DEPTH {
                    continue;
                }
                for pattern in pattern.split_whitespace() {
                    let pattern =
                        if pattern.starts_with('/') { pattern.to_string() } else { format!("{here}/{pattern}") };
                    for file in self.glob(&pattern) {
                        self.read_conf(&file, depth + 1, budget, dirs);
                    }
                }
            } else if line.starts_with("hwcap") {
                continue;
            } else {
                for dir in line.split([' ', '\t', ':', ',']).filter(|d| d.starts_with('/')) {
                    // ldconfig's old `DIR=TYPE` form.
                    let dir = dir.split('=').next().unwrap_or(dir);
                    dirs.push(normalize(dir));
                }
            }
        }
    }

    /// musl's search path: `/etc/ld-musl-ARCH.path` when present, else its default.
    pub(crate) fn musl_path(&self, arch: &str) -> Vec<String> {
        match self.read_small(&format!("/etc/ld-musl-{arch}.path")) {
            Some(text) => {
                dedup(text.split(['\n', ':']).map(str::trim).filter(|d| d.starts_with('/')).map(normalize).collect())
            }
            None => ["/lib", "/usr/local/lib", "/usr/lib"].map(String::from).to_vec(),
        }
    }

    /// A small text file inside the sysroot, when it exists.
    pub(crate) fn read_small(&self, path: &str) -> Option<String> {
        use std::io::Read;
        let resolved = self.resolve(path)?;
        let file = fs::File::open(self.host(&resolved)).ok()?;
        let mut text = String::new();
        file.take(MAX_CONF_BYTES).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// The files matching `pattern`, whose last component may hold `*` and `?`, sorted.
    fn glob(&self, pattern: &str) -> Vec<String> {
        let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
        if !name.contains(['*', '?']) {
            return vec![pattern.to_string()];
        }
        let Some(resolved) = self.resolve(if dir.is_empty() { "/" } else { dir }) else { return Vec::new() };
        let Ok(entries) = fs::read_dir(self.host(&resolved)) else { return Vec::new() };
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| wildcard(name.as_bytes(), n.as_bytes()))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        files.sort();
        files
    }
}

/// `path` with `.`, `..` and repeated slashes removed (`..` stops at `/`); always absolute.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn dedup(dirs: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for dir in dirs {
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// Shell wildcard match of `name` against `pattern` (`*` and `?`; a leading `.` is not matched
/// by a wildcard, as glob(3) does).
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, Sysroot) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
        fs::create_dir_all(root.join("etc/ld.so.conf.d")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        fs::write(root.join("usr/lib/x86_64-linux-gnu/libz.so.1.2.13"), b"z").unwrap();
        symlink("libz.so.1.2.13", root.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap();
        symlink("/usr/lib/x86_64-linux-gnu/libz.so.1", root.join("usr/lib/abs.so")).unwrap();
        symlink("../../../../outside", root.join("usr/lib/escape.so")).unwrap();
        symlink("loop2", root.join("usr/lib/loop1")).unwrap();
        symlink("loop1", root.join("usr/lib/loop2")).unwrap();
        fs::write(dir.path().join("outside"), b"secret").unwrap();
        fs::write(root.join("outside"), b"inside").unwrap();
        let sysroot = Sysroot::open(&root).unwrap();
        (dir, sysroot)
    }

    #[test]
    fn resolves_like_a_chroot() {
        let (_dir, s) = tree();
        let z = Some("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13".to_string());
        assert_eq!(s.resolve("/lib/x86_64-linux-gnu/libz.so.1"), z);
        assert_eq!(s.resolve("/usr/lib/abs.so"), z);
        assert_eq!(s.resolve("/lib/../lib/./x86_64-linux-gnu//libz.so.1"), z);
        // `..` past the sysroot stops at it: the symlink lands on <root>/outside, not the real one.
        assert_eq!(s.resolve("/usr/lib/escape.so").as_deref(), Some("/outside"));
        assert_eq!(fs::read(s.host("/outside")).unwrap(), b"inside");
        assert_eq!(s.resolve("/../../outside").as_deref(), Some("/outside"));
        assert_eq!(s.resolve("/usr/lib/loop1"), None);
        assert_eq!(s.resolve("/usr/lib/missing.so"), None);
        assert_eq!(s.resolve("/outside/x"), None, "a file is not a directory");
    }

    #[test]
    fn missing_sysroot() {
        let err = Sysroot::open(Path::new("/nonexistent/sysroot")).unwrap_err();
        assert!(matches!(err, Error::SysrootNotFound { .. }), "{err:?}");
    }

    #[test]
    fn reads_ld_so_conf_with_includes() {
        let (_dir, s) = tree();
        fs::write(s.host("/etc/ld.so.conf"), "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/a:/opt/b\n").unwrap();
        fs::write(s.host("/etc/ld.so.conf.d/b.conf"), "/usr/local/lib # libc\n/opt/a\n").unwrap();
        fs::write(s.host("/etc/ld.so.conf.d/a.conf"), "/opt/first/\ninclude nested.txt\nhwcap 0 x\n").unwrap();
        fs::write(s.host("/etc/ld.so.conf.d/nested.txt"), "/opt/nested\n").unwrap();
        fs::write(s.host("/etc/ld.so.conf.d/.hidden.conf"), "/opt/hidden\n").unwrap();
        fs::write(s.host("/etc/ld.so.conf.d/ignored"), "/opt/ignored\n").unwrap();
        assert_eq!(s.ld_so_conf(), ["/opt/first", "/opt/nested", "/usr/local/lib", "/opt/a", "/opt/b"]);
    }

    #[test]
    fn include_loops_end() {
        let (_dir, s) = tree();
        fs::write(s.host("/etc/ld.so.conf"), "include /etc/ld.so.conf\n/x\n").unwrap();
        assert_eq!(s.ld_so_conf(), ["/x"]);
        // Ten files that each include all ten: bounded, not 10^8 reads.
        fs::write(s.host("/etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
        for i in 0..10 {
            fs::write(s.host(&format!("/etc/ld.so.conf.d/{i}.conf")), format!("include *.conf\n/d{i}\n")).unwrap();
        }
        let start = std::time::Instant::now();
        assert_eq!(s.ld_so_conf().len(), 10);
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn musl_path_file_or_default() {
        let (_dir, s) = tree();
        assert_eq!(s.musl_path("x86_64"), ["/lib", "/usr/local/lib", "/usr/lib"]);
        fs::write(s.host("/etc/ld-musl-x86_64.path"), "/opt/lib:/usr/lib\n/lib\n").unwrap();
        assert_eq!(s.musl_path("x86_64"), ["/opt/lib", "/usr/lib", "/lib"]);
    }

    #[test]
    fn wildcards() {
        for (pattern, name, want) in [
            ("*.conf", "a.conf", true),
            ("*.conf", "a.conf.bak", false),
            ("*.conf", ".a.conf", false),
            ("a?c", "abc", true),
            ("*", "", true),
            ("*x*y", "axbxy", true),
        ] {
            assert_eq!(wildcard(pattern.as_bytes(), name.as_bytes()), want, "{pattern} {name}");
        }
        assert_eq!(normalize("/a/./b/../c//"), "/a/c");
        assert_eq!(normalize("/../x"), "/x");
    }
}
