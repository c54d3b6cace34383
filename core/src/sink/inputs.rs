//! Outputs that would destroy an input: an archive written over the program, a layout
//! written into the base's layout, two outputs naming one file. Refused before any work.

use super::{parent_dir, Sink};
use crate::error::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// A file or directory a build reads, that no output may overwrite. A build lists every one
/// it has (the program, a local base; files it adds to the image) for [`check_outputs`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a> {
    /// What it is, as errors name it: "the program", "the base".
    pub what: &'static str,
    pub path: &'a Path,
}

/// Refuse, before any work, outputs that would overwrite one of the build's `inputs` (the
/// program, a base archive or layout) or each other: an archive written over the program, a
/// layout written into the base's layout, two outputs naming one file.
pub(crate) fn check_outputs(sinks: &[Sink], inputs: &[Input<'_>]) -> Result<()> {
    let mut seen: Vec<(&Sink, Written)> = Vec::new();
    for sink in sinks {
        let written = match sink {
            // The archive replaces the directory entry (a link there is replaced, not followed).
            Sink::OciArchive { path } => Written::File(entry_path(path)),
            Sink::OciLayout { dir, .. } => Written::Layout(real_path(dir)),
            Sink::DockerDaemon { .. } | Sink::Registry { .. } => continue,
        };
        for input in inputs {
            let read = real_path(input.path);
            let read = if read.is_dir() { Written::Layout(read) } else { Written::File(read) };
            if written.overlaps(&read) {
                return Err(Error::InvalidOption {
                    option: "output",
                    value: sink.to_string(),
                    reason: format!(
                        "it would overwrite {} ({}), an input of this build; name another --output",
                        input.what,
                        input.path.display()
                    ),
                });
            }
        }
        if let Some((other, _)) = seen.iter().find(|(_, w)| w.overlaps(&written)) {
            return Err(Error::InvalidOption {
                option: "output",
                value: sink.to_string(),
                reason: format!("it is, contains or lies inside the output {other}; give each output its own path"),
            });
        }
        seen.push((sink, written));
    }
    Ok(())
}

/// Where an output writes (or an input is read from), as absolute paths.
enum Written {
    File(PathBuf),
    Layout(PathBuf),
}

impl Written {
    fn overlaps(&self, other: &Written) -> bool {
        match (self, other) {
            (Written::File(a), Written::File(b)) => a == b,
            (Written::File(file), Written::Layout(dir)) | (Written::Layout(dir), Written::File(file)) => {
                file == dir
                    || file.starts_with(dir.join("blobs"))
                    || file == &dir.join("index.json")
                    || file == &dir.join("oci-layout")
            }
            (Written::Layout(a), Written::Layout(b)) => a.starts_with(b) || b.starts_with(a),
        }
    }
}

/// `path` with every link resolved, as far as it exists.
fn real_path(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| entry_path(path))
}

/// `path` with its directory's links resolved, its last part as written.
fn entry_path(path: &Path) -> PathBuf {
    let dir = fs::canonicalize(parent_dir(path)).unwrap_or_else(|_| parent_dir(path));
    match path.file_name() {
        Some(name) => dir.join(name),
        None => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_may_not_overwrite_inputs_or_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let program = d.join("hello");
        fs::write(&program, b"x").unwrap();
        let base = d.join("base");
        fs::create_dir_all(base.join("blobs/sha256")).unwrap();
        let inputs = [Input { what: "the program", path: &program }, Input { what: "the base", path: &base }];
        let sink = |s: String| s.parse::<Sink>().unwrap();
        let p = |path: &Path| path.display().to_string();
        let refused = [
            vec![sink(p(&program))],
            vec![sink(format!("oci-archive:{}", p(&d.join("sub/../hello"))))],
            vec![sink(format!("oci:{}:x", p(&base)))],
            vec![sink(format!("oci:{}", p(&base.join("inner"))))],
            vec![sink(p(&base.join("index.json")))],
            vec![sink(p(&base.join("blobs/sha256/abc")))],
            vec![sink(format!("oci:{}", p(d)))],
            vec![sink(p(&d.join("a.tar"))), sink(format!("oci-archive:{}", p(&d.join("a.tar"))))],
            vec![sink(format!("oci:{}:a", p(&d.join("l")))), sink(format!("oci:{}:b", p(&d.join("l"))))],
        ];
        fs::create_dir(d.join("sub")).unwrap();
        for sinks in refused {
            let err = check_outputs(&sinks, &inputs).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{sinks:?}");
            assert!(err.to_string().starts_with("invalid output"), "{err}");
        }
        let fine = [
            sink(p(&d.join("hello.tar"))),
            sink(format!("oci:{}", p(&d.join("layout")))),
            sink(p(&base.join("beside-the-blobs.tar"))),
            sink("docker://reg.io/a:1".into()),
        ];
        check_outputs(&fine, &inputs).unwrap();
    }
}
