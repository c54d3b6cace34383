//! The program an image is built around: a Linux ELF executable, checked before anything is
//! written, whose platform comes from its ELF header unless the caller names one.

use crate::elf::{self, ElfInfo, ProgramKind};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::platform::Platform;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// A checked program: a regular, readable ELF executable, and the platform it runs on.
#[derive(Debug, Clone)]
pub struct Program {
    path: PathBuf,
    info: ElfInfo,
    platform: Platform,
}

impl Program {
    /// Check `path` is an ELF executable (not a script, object file or directory) and work out
    /// its platform: `platform` when given (it must agree with the ELF header), else the
    /// header's architecture.
    pub fn open(path: &Path, platform: Option<&Platform>) -> Result<Program> {
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ProgramNotFound { path: path.to_path_buf() },
            _ => Error::io("read", path, e),
        })?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a directory" } else { "not a file" };
            return Err(Error::ProgramNotFile { path: path.to_path_buf(), what });
        }
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let kind = elf::inspect(&mut file).map_err(|e| Error::io("read", path, e))?;
        let info = match kind {
            ProgramKind::Elf(info) if info.is_executable() => info,
            ProgramKind::Elf(_) => {
                return Err(not_runnable(
                    path,
                    "it is an ELF object file or core dump, not an executable",
                    "link it into an executable first",
                ))
            }
            ProgramKind::Script(interp) => {
                return Err(not_runnable(
                    path,
                    &format!("it is a script (#!{interp}), not a compiled program"),
                    "package a compiled executable, or build on a base that contains the interpreter",
                ))
            }
            ProgramKind::Unknown => {
                return Err(not_runnable(
                    path,
                    "it is not an ELF executable",
                    "package a Linux executable (an ELF binary), e.g. built with CGO_ENABLED=0 or --target x86_64-unknown-linux-musl",
                ))
            }
        };
        let platform = match (platform, info.architecture()) {
            (Some(p), Some((arch, _))) if p.architecture() != arch => {
                return Err(Error::ArchitectureMismatch {
                    path: path.to_path_buf(),
                    program_arch: arch.to_string(),
                    platform: p.to_string(),
                })
            }
            (Some(p), _) => p.clone(),
            (None, Some((arch, variant))) => Platform::new("linux", arch, variant)?,
            (None, None) => {
                return Err(Error::InvalidPlatform {
                    input: info.machine_name(),
                    reason: format!("cannot tell the platform of {}; pass --platform", path.display()),
                })
            }
        };
        Ok(Program { path: path.to_path_buf(), info, platform })
    }

    /// Where the program is on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The platform it runs on.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// What its ELF header says.
    pub fn elf(&self) -> &ElfInfo {
        &self.info
    }

    /// Its dynamic loader (`PT_INTERP`), when it is dynamically linked.
    pub fn interpreter(&self) -> Option<&str> {
        self.info.interpreter.as_deref()
    }

    /// Its file name (`server`), for messages, history and default names.
    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned())
    }

    /// The layer entry that puts the program at `path_in_image`: mode 0755, owned by root.
    pub fn entry(&self, path_in_image: &str) -> Entry {
        Entry::file(path_in_image, &self.path).with_mode(0o755)
    }
}

fn not_runnable(path: &Path, reason: &str, hint: &str) -> Error {
    Error::ProgramNotRunnable { path: path.to_path_buf(), reason: reason.to_string(), hint: hint.to_string() }
}

/// The absolute, normalised path of the program inside the image: `path`, else
/// `/<file name>`.
pub fn path_in_image(program: &Path, path: Option<&str>) -> Result<String> {
    let path = match path {
        Some(p) => p.to_string(),
        None => {
            let name = program.file_name().ok_or_else(|| Error::ProgramNotFile {
                path: program.to_path_buf(),
                what: "a path without a file name",
            })?;
            format!("/{}", name.to_string_lossy())
        }
    };
    let bad = |reason: &str| Error::InvalidOption { option: "path", value: path.clone(), reason: reason.to_string() };
    if !path.starts_with('/') {
        return Err(bad("it must be absolute, e.g. /app/server"));
    }
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(bad("it must name a file, without empty, '.' or '..' parts"));
    }
    if path.len() > 255 || path.chars().any(char::is_control) {
        return Err(bad("it is longer than 255 bytes or has control characters"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths() {
        let p = Path::new("./dist/hello");
        assert_eq!(path_in_image(p, None).unwrap(), "/hello");
        assert_eq!(path_in_image(p, Some("/app/x")).unwrap(), "/app/x");
        for bad in ["app/x", "/", "/app/", "/a/../b", "/a//b", "/./a"] {
            assert!(path_in_image(p, Some(bad)).is_err(), "{bad}");
        }
    }
}
