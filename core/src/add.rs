//! Files beside the program (`--add SRC:DEST`): host files and directories turned into layer
//! entries that do not depend on the host. Modes are normalised (directories 0755; files 0755
//! when any execute bit is set, else 0644), owners are root unless asked, mtimes come from
//! the layer (`SOURCE_DATE_EPOCH`); host uids, user names, xattrs and device numbers are
//! never recorded. Symlinks inside SRC stay symlinks; one that points outside SRC is refused
//! unless `follow_symlinks` asks to copy what it points to.

use crate::entry::{normalise, Entry};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// How deep `follow_symlinks` follows directory links before it calls it a loop.
const MAX_FOLLOW_DEPTH: usize = 40;

/// One `--add SRC:DEST`: a host file or directory and where it goes in the image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    /// A file or directory on the host.
    pub src: PathBuf,
    /// An absolute path in the image.
    pub dest: String,
    /// Owner `uid[:gid]` of everything added (default `0:0`), e.g. for a non-root program's
    /// writable directory. Directories above `dest` stay root's.
    #[serde(default)]
    pub owner: Option<String>,
    /// Copy what symlinks pointing outside `src` point to, instead of refusing them.
    #[serde(default, alias = "followSymlinks")]
    pub follow_symlinks: bool,
}

impl FromStr for Add {
    type Err = Error;

    /// `SRC:DEST`, split at the last `:` that starts an absolute DEST.
    fn from_str(s: &str) -> Result<Add> {
        let (src, dest) = s.rfind(":/").map(|i| (&s[..i], &s[i + 1..])).ok_or_else(|| Error::InvalidOption {
            option: "add",
            value: s.to_string(),
            reason: "expected SRC:DEST with an absolute DEST, e.g. ./static:/srv/static".into(),
        })?;
        if src.is_empty() {
            return Err(Error::InvalidOption { option: "add", value: s.to_string(), reason: "SRC is empty".into() });
        }
        Ok(Add { src: PathBuf::from(src), dest: dest.to_string(), owner: None, follow_symlinks: false })
    }
}

impl Add {
    /// Every entry this adds, checked: SRC exists, DEST is absolute and normalised, no special
    /// files, no symlink leaving SRC (unless followed).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let bad = |reason: String| Error::InvalidOption { option: "add", value: self.to_string(), reason };
        let dest = normalise(&self.dest, "add").map_err(|e| match e {
            Error::InvalidOption { reason, .. } => bad(format!("DEST {reason}")),
            other => other,
        })?;
        let (uid, gid) = match &self.owner {
            None => (0, 0),
            Some(owner) => parse_owner(owner).ok_or_else(|| Error::InvalidOption {
                option: "add owner",
                value: owner.clone(),
                reason: "expected UID[:GID], numbers".into(),
            })?,
        };
        let meta = fs::symlink_metadata(&self.src).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(format!("{} does not exist", self.src.display())),
            _ => Error::io("read", &self.src, e),
        })?;
        let mut out = Vec::new();
        let root = if meta.file_type().is_symlink() {
            fs::canonicalize(&self.src).map_err(|e| Error::io("follow the symlink", &self.src, e))?
        } else {
            self.src.clone()
        };
        self.walk(&root, &root, &format!("/{dest}"), 0, &mut out)?;
        Ok(out.into_iter().map(|e| e.with_owner(uid, gid)).collect())
    }

    fn walk(&self, root: &Path, path: &Path, dest: &str, depth: usize, out: &mut Vec<Entry>) -> Result<()> {
        let meta = fs::symlink_metadata(path).map_err(|e| Error::io("read", path, e))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(path).map_err(|e| Error::io("read the symlink", path, e))?;
            if stays_inside(root, path, &target) {
                out.push(Entry::symlink(dest, target.to_string_lossy()));
                return Ok(());
            }
            if !self.follow_symlinks {
                return Err(Error::InvalidOption {
                    option: "add",
                    value: self.to_string(),
                    reason: format!(
                        "{} is a symlink to {}, outside {}; copy what it points to with follow_symlinks, or remove it",
                        path.display(),
                        target.display(),
                        self.src.display()
                    ),
                });
            }
            if depth >= MAX_FOLLOW_DEPTH {
                return Err(Error::io("follow", path, std::io::Error::other("too many levels of symbolic links")));
            }
            let real = fs::canonicalize(path).map_err(|e| Error::io("follow the symlink", path, e))?;
            return self.walk(&real, &real, dest, depth + 1, out);
        }
        if kind.is_dir() {
            out.push(Entry::dir(dest));
            let mut children: Vec<_> = fs::read_dir(path)
                .map_err(|e| Error::io("read the directory", path, e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .map_err(|e| Error::io("read the directory", path, e))?;
            children.sort();
            for name in children {
                let Some(text) = name.to_str() else {
                    return Err(Error::InvalidOption {
                        option: "add",
                        value: self.to_string(),
                        reason: format!("{} has a name that is not UTF-8", path.join(&name).display()),
                    });
                };
                self.walk(root, &path.join(&name), &format!("{dest}/{text}"), depth, out)?;
            }
            return Ok(());
        }
        if kind.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            out.push(Entry::file(dest, path).with_mode(mode));
            return Ok(());
        }
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        Err(Error::InvalidOption {
            option: "add",
            value: self.to_string(),
            reason: format!("{} is {what}; only files, directories and symlinks can be added", path.display()),
        })
    }
}

impl std::fmt::Display for Add {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.src.display(), self.dest)
    }
}

/// `UID[:GID]`.
fn parse_owner(owner: &str) -> Option<(u64, u64)> {
    let (uid, gid) = owner.split_once(':').unwrap_or((owner, owner));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// Whether a symlink at `link` (inside `root`) pointing to `target` resolves inside `root`,
/// judged on the names alone.
fn stays_inside(root: &Path, link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let Ok(relative) = link.parent().unwrap_or(root).strip_prefix(root) else { return false };
    let mut depth: isize = relative.components().filter(|c| matches!(c, Component::Normal(_))).count() as isize;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Every entry of `adds`, for one layer: checked against each other (a directory several items
/// share appears once; a file twice is refused) and against the program's path in the image
/// (`program_path`; empty when there is no program).
pub fn entries_of(adds: &[Add], program_path: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for add in adds {
        for entry in add.entries()? {
            if entry.path == program_path || program_path.starts_with(&format!("{}/", entry.path)) && !is_dir(&entry) {
                return Err(Error::InvalidOption {
                    option: "add",
                    value: add.to_string(),
                    reason: format!("{} is where the program goes; pick another DEST or --path", entry.path),
                });
            }
            if let Some(other) = seen.insert(entry.path.clone(), add.to_string()) {
                if !(is_dir(&entry) && entries.iter().any(|e: &Entry| e.path == entry.path && is_dir(e))) {
                    return Err(Error::InvalidOption {
                        option: "add",
                        value: add.to_string(),
                        reason: format!("{} is also added by {other}", entry.path),
                    });
                }
                continue;
            }
            entries.push(entry);
        }
    }
    Ok(entries)
}

fn is_dir(entry: &Entry) -> bool {
    matches!(entry.kind, crate::entry::EntryKind::Dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_src_dest() {
        let add: Add = "./static:/srv/static".parse().unwrap();
        assert_eq!((add.src.to_str().unwrap(), add.dest.as_str()), ("./static", "/srv/static"));
        let add: Add = "a:b:/x".parse().unwrap();
        assert_eq!(add.src.to_str().unwrap(), "a:b");
        for bad in ["./static", "./static:srv", ":/x"] {
            assert!(bad.parse::<Add>().is_err(), "{bad}");
        }
    }

    #[test]
    fn walks_deterministically_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("assets");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/b.txt"), "b").unwrap();
        fs::write(src.join("run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(src.join("sub/b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("sub/b.txt", src.join("link")).unwrap();
        let add =
            Add { src: src.clone(), dest: "/srv/assets".into(), owner: Some("65532".into()), follow_symlinks: false };
        let entries = add.entries().unwrap();
        let listing: Vec<(String, u32, u64)> = entries.iter().map(|e| (e.path.clone(), e.mode, e.uid)).collect();
        assert_eq!(
            listing,
            vec![
                ("/srv/assets".into(), 0o755, 65532),
                ("/srv/assets/link".into(), 0o777, 65532),
                ("/srv/assets/run.sh".into(), 0o755, 65532),
                ("/srv/assets/sub".into(), 0o755, 65532),
                ("/srv/assets/sub/b.txt".into(), 0o644, 65532),
            ]
        );
        std::os::unix::fs::symlink("../../etc/passwd", src.join("sub/escape")).unwrap();
        let err = add.entries().unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let follow = Add { follow_symlinks: true, ..add.clone() };
        assert!(follow.entries().is_err() || dir.path().join("etc/passwd").exists(), "a dangling escape fails");
        fs::remove_file(src.join("sub/escape")).unwrap();
        fs::write(dir.path().join("outside.txt"), "o").unwrap();
        std::os::unix::fs::symlink("../../outside.txt", src.join("sub/escape")).unwrap();
        let followed = follow.entries().unwrap();
        assert!(followed
            .iter()
            .any(|e| e.path == "/srv/assets/sub/escape" && !matches!(e.kind, crate::entry::EntryKind::Symlink(_))));
        for dest in ["srv", "/a/../b", "/"] {
            let bad = Add { dest: dest.into(), ..add.clone() };
            assert!(bad.entries().is_err(), "{dest}");
        }
        let missing = Add { src: dir.path().join("nope"), ..add.clone() };
        assert!(missing.entries().unwrap_err().to_string().contains("does not exist"));
    }

    #[test]
    fn collisions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let add = |dest: &str| Add { src: file.clone(), dest: dest.into(), owner: None, follow_symlinks: false };
        assert!(entries_of(&[add("/app")], "/app").is_err());
        assert!(entries_of(&[add("/a"), add("/a")], "/app").is_err());
        assert_eq!(entries_of(&[add("/a"), add("/b")], "/app").unwrap().len(), 2);
    }
}
