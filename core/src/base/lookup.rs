//! Does a base's filesystem have a file? Used to check that a dynamically linked program's
//! interpreter (`/lib64/ld-linux-x86-64.so.2`) is in the base. Layers are read in order
//! (verified against their digests), whiteouts applied, and symlinks followed.

use crate::error::{Error, Result};
use crate::layer::Layer;
use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::{self, Read};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(String),
    /// A hard link to another path (relative to the root).
    Hardlink(String),
}

/// Whether `path` names a regular file (after following links) in the union of `layers`.
pub(super) fn has_file(layers: &[Layer], path: &str) -> Result<bool> {
    let mut tree: BTreeMap<String, (Node, usize)> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let reader: Box<dyn Read> = if layer.media_type.ends_with("gzip") {
            Box::new(MultiGzDecoder::new(layer.verified_reader()?))
        } else if layer.media_type.ends_with("zstd") {
            skipped.push(layer.digest.clone());
            continue;
        } else {
            Box::new(layer.verified_reader()?)
        };
        read_layer(reader, i, &mut tree).map_err(|e| {
            match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
                Some(_) => *e.into_inner().and_then(|inner| inner.downcast::<Error>().ok()).expect("checked"),
                None => Error::InvalidBase {
                    base: layer.source_path().display().to_string(),
                    reason: format!("layer {} is not a readable tar ({e})", layer.digest),
                },
            }
        })?;
    }
    let found = resolve(&tree, path);
    if !found && !skipped.is_empty() {
        return Err(Error::Unsupported {
            what: format!("looking for {path} in zstd-compressed base layers"),
            hint: Some("pass --allow-dynamic if the base has the program's libraries".into()),
        });
    }
    Ok(found)
}

fn read_layer(reader: Box<dyn Read>, layer: usize, tree: &mut BTreeMap<String, (Node, usize)>) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let entry = entry?;
        let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        if name.is_empty() {
            continue;
        }
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", &name));
        if base == ".wh..wh..opq" {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            tree.retain(|k, (_, l)| !(k.starts_with(&prefix) && *l < layer));
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() { hidden.to_string() } else { format!("{dir}/{hidden}") };
            let prefix = format!("{target}/");
            tree.retain(|k, _| *k != target && !k.starts_with(&prefix));
            continue;
        }
        let link = || entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
        let node = match entry.header().entry_type() {
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Symlink => Node::Symlink(link()),
            tar::EntryType::Link => Node::Hardlink(clean(&link())),
            tar::EntryType::Regular | tar::EntryType::Continuous => Node::File,
            _ => continue,
        };
        // Parents exist even when the tar has no entries for them.
        let mut parent = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            tree.entry(parent.clone()).or_insert((Node::Dir, layer));
        }
        if node != Node::Dir {
            // A file replacing a directory hides what was under it.
            let prefix = format!("{name}/");
            tree.retain(|k, _| !k.starts_with(&prefix));
        }
        tree.insert(name, (node, layer));
    }
    // Read to the end so the blob's digest is checked.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())?;
    Ok(())
}

/// `./a//b/` → `a/b`
fn clean(name: &str) -> String {
    name.split('/').filter(|p| !p.is_empty() && *p != ".").collect::<Vec<_>>().join("/")
}

/// Walk `path` through the tree, following symlinks (at most 40), like the kernel does.
fn resolve(tree: &BTreeMap<String, (Node, usize)>, path: &str) -> bool {
    let mut pending: Vec<String> = path.split('/').filter(|p| !p.is_empty()).rev().map(str::to_string).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(part);
        let key = current.join("/");
        match tree.get(&key).map(|(node, _)| node) {
            None => return false,
            Some(Node::Dir) => {}
            Some(Node::File) => {
                if !pending.is_empty() {
                    return false;
                }
            }
            Some(Node::Hardlink(target)) => {
                if !pending.is_empty() {
                    return false;
                }
                return matches!(tree.get(target), Some((Node::File, _)));
            }
            Some(Node::Symlink(target)) => {
                hops += 1;
                if hops > 40 {
                    return false;
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').filter(|p| !p.is_empty()).rev().map(str::to_string));
            }
        }
    }
    matches!(tree.get(&current.join("/")), Some((Node::File | Node::Hardlink(_), _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, Node)]) -> BTreeMap<String, (Node, usize)> {
        entries.iter().map(|(k, n)| (k.to_string(), (n.clone(), 0))).collect()
    }

    #[test]
    fn follows_symlinks() {
        let t = tree(&[
            ("lib64", Node::Symlink("usr/lib64".into())),
            ("usr", Node::Dir),
            ("usr/lib64", Node::Dir),
            ("usr/lib64/ld-linux-x86-64.so.2", Node::Symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into())),
            ("usr/lib", Node::Dir),
            ("usr/lib/x86_64-linux-gnu", Node::Dir),
            ("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Node::File),
            ("loop", Node::Symlink("/loop".into())),
            ("dangling", Node::Symlink("/nowhere".into())),
        ]);
        assert!(resolve(&t, "/lib64/ld-linux-x86-64.so.2"));
        assert!(resolve(&t, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        assert!(!resolve(&t, "/lib/ld-musl-x86_64.so.1"));
        assert!(!resolve(&t, "/loop"));
        assert!(!resolve(&t, "/dangling"));
        assert!(!resolve(&t, "/usr/lib"), "a directory is not a file");
    }

    #[test]
    fn applies_whiteouts() {
        let mut t = BTreeMap::new();
        let layer = |entries: &[(&str, tar::EntryType)]| {
            let mut b = tar::Builder::new(Vec::new());
            for (name, kind) in entries {
                let mut h = tar::Header::new_ustar();
                h.set_path(name).unwrap();
                h.set_entry_type(*kind);
                h.set_size(0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            b.into_inner().unwrap()
        };
        let one = layer(&[
            ("lib/", tar::EntryType::Directory),
            ("lib/ld.so", tar::EntryType::Regular),
            ("etc/passwd", tar::EntryType::Regular),
        ]);
        read_layer(Box::new(io::Cursor::new(one)), 0, &mut t).unwrap();
        assert!(resolve(&t, "/lib/ld.so"));
        assert!(resolve(&t, "/etc/passwd"), "implicit parent");
        let two = layer(&[("lib/.wh.ld.so", tar::EntryType::Regular)]);
        read_layer(Box::new(io::Cursor::new(two)), 1, &mut t).unwrap();
        assert!(!resolve(&t, "/lib/ld.so"));
        let three = layer(&[("etc/.wh..wh..opq", tar::EntryType::Regular)]);
        read_layer(Box::new(io::Cursor::new(three)), 2, &mut t).unwrap();
        assert!(!resolve(&t, "/etc/passwd"));
    }
}
