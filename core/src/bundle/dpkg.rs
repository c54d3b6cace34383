//! Which Debian package installed a file, from a sysroot's dpkg database
//! (`var/lib/dpkg/status` and the `var/lib/dpkg/info/*.list` file lists).

use super::sysroot::Sysroot;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;

/// Bytes of `status` we read (a full desktop system has a few MB).
const MAX_STATUS_BYTES: u64 = 64 << 20;
/// File lists we read.
const MAX_LISTS: usize = 100_000;

/// A Debian package that owns a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: String,
    pub version: String,
    pub architecture: Option<String>,
}

/// The packages owning `paths` (absolute paths inside the sysroot; each is also tried with
/// `/usr` added or removed, since merged-`/usr` systems list either form), by path. Empty
/// when the sysroot has no dpkg database.
pub(crate) fn owners(sysroot: &Sysroot, paths: &[String]) -> BTreeMap<String, Package> {
    let mut found = BTreeMap::new();
    let Some(status) = sysroot.resolve("/var/lib/dpkg/status") else { return found };
    let Some(info_dir) = sysroot.resolve("/var/lib/dpkg/info") else { return found };
    let versions = match fs::File::open(sysroot.host(&status)) {
        Ok(file) => {
            let mut text = String::new();
            if file.take(MAX_STATUS_BYTES).read_to_string(&mut text).is_err() {
                return found;
            }
            parse_status(&text)
        }
        Err(_) => return found,
    };
    // Every spelling of each wanted path → the path it stands for.
    let mut wanted: BTreeMap<String, &String> = BTreeMap::new();
    for path in paths {
        wanted.insert(path.clone(), path);
        let other = match path.strip_prefix("/usr") {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => format!("/usr{path}"),
        };
        wanted.entry(other).or_insert(path);
    }
    let Ok(entries) = fs::read_dir(sysroot.host(&info_dir)) else { return found };
    let mut lists: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".list"))
        .take(MAX_LISTS)
        .collect();
    lists.sort();
    let wanted_bytes: BTreeMap<&[u8], &String> = wanted.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
    // Most lines (documentation, headers) are rejected by their length alone.
    let lengths: BTreeSet<usize> = wanted.keys().map(String::len).collect();
    let distinct = paths.iter().collect::<BTreeSet<_>>().len();
    for list in lists {
        // Each list is read whole and split as bytes: this scan is most of the cost of bundling.
        let Ok(mut file) = fs::File::open(sysroot.host(&info_dir).join(&list)) else { continue };
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            continue;
        }
        let hits: Vec<&String> = bytes
            .split(|&b| b == b'\n')
            .filter(|line| lengths.contains(&line.len()))
            .filter_map(|line| wanted_bytes.get(line).copied())
            .collect();
        if hits.is_empty() {
            continue;
        }
        let qualified = list.trim_end_matches(".list");
        let (name, arch) = match qualified.split_once(':') {
            Some((name, arch)) => (name, Some(arch)),
            None => (qualified, None),
        };
        let Some((architecture, version)) = versions
            .iter()
            .find(|(n, a, _)| n == name && (arch.is_none() || a.as_deref() == arch))
            .map(|(_, a, v)| (a.clone(), v.clone()))
        else {
            continue;
        };
        for path in hits {
            found.entry(path.clone()).or_insert_with(|| Package {
                name: name.to_string(),
                version: version.clone(),
                architecture: architecture.clone(),
            });
        }
        if found.len() == distinct {
            break;
        }
    }
    found
}

/// (package, architecture, version) of every installed package in a dpkg `status` file.
fn parse_status(text: &str) -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let (mut name, mut arch, mut version, mut installed) = (None, None, None, false);
        for line in paragraph.lines() {
            if let Some((key, value)) = line.split_once(':') {
                let value = value.trim();
                match key {
                    "Package" => name = Some(value.to_string()),
                    "Architecture" => arch = Some(value.to_string()),
                    "Version" => version = Some(value.to_string()),
                    "Status" => installed = value.ends_with(" installed"),
                    _ => {}
                }
            }
        }
        if let (Some(name), Some(version), true) = (name, version, installed) {
            out.push((name, arch, version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_owners_in_either_usr_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        fs::write(
            dir.path().join("var/lib/dpkg/status"),
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13\n\n\
             Package: zlib1g\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1:1.2.12\n\n\
             Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
             Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n",
        )
        .unwrap();
        fs::write(info.join("zlib1g:amd64.list"), "/.\n/lib/x86_64-linux-gnu/libz.so.1.2.13\n").unwrap();
        fs::write(info.join("zlib1g:arm64.list"), "/lib/aarch64-linux-gnu/libz.so.1.2.12\n").unwrap();
        fs::write(info.join("gone.list"), "/usr/lib/libc.so.6\n").unwrap();
        fs::write(info.join("libc6.list"), "/usr/lib/x86_64-linux-gnu/libc.so.6\n").unwrap();
        let sysroot = Sysroot::open(dir.path()).unwrap();
        let paths = [
            "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13".to_string(),
            "/lib/aarch64-linux-gnu/libz.so.1.2.12".to_string(),
            "/lib/x86_64-linux-gnu/libc.so.6".to_string(),
            "/usr/lib/libc.so.6".to_string(),
        ];
        let found = owners(&sysroot, &paths);
        assert_eq!(found[&paths[0]].version, "1:1.2.13");
        assert_eq!(found[&paths[0]].architecture.as_deref(), Some("amd64"));
        assert_eq!(found[&paths[1]].version, "1:1.2.12");
        assert_eq!(found[&paths[2]].name, "libc6");
        assert!(!found.contains_key(&paths[3]), "not installed");
    }

    #[test]
    fn no_database() {
        let dir = tempfile::tempdir().unwrap();
        let sysroot = Sysroot::open(dir.path()).unwrap();
        assert!(owners(&sysroot, &["/lib/x".into()]).is_empty());
    }
}
