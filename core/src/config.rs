//! The image config: created from scratch or taken from a base, and edited as JSON so that
//! fields zeroimage does not model (Healthcheck, OnBuild, Shell, …) survive untouched.

use crate::error::{Error, Result};
use crate::platform::Platform;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Edits to an image's runtime config, applied all at once by
/// [`ImageBuilder::configure`](crate::ImageBuilder::configure): every edit is checked before
/// any is made. Fields left at their default change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEdits {
    /// Replaces the Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `Some(args)` replaces Cmd; `Some(vec![])` and a new entrypoint without `cmd` remove the
    /// base's Cmd (as `docker build` does when ENTRYPOINT changes).
    pub cmd: Option<Vec<String>>,
    /// Merged over the base's Env by name, in order.
    pub env: Vec<(String, String)>,
    /// Replaces User (`name`, `uid`, `uid:gid`).
    pub user: Option<String>,
    /// Replaces WorkingDir (absolute).
    pub workdir: Option<String>,
    /// Merged over the base's Labels.
    pub labels: BTreeMap<String, String>,
}

impl ConfigEdits {
    /// Check every edit, naming the option of a bad one.
    pub fn check(&self) -> Result<()> {
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(Error::InvalidOption {
                    option: "env",
                    value: format!("{key}={value}"),
                    reason: "the name must be non-empty and contain no '='".into(),
                });
            }
        }
        for key in self.labels.keys() {
            if key.is_empty() {
                return Err(Error::InvalidOption {
                    option: "label",
                    value: key.clone(),
                    reason: "the key is empty".into(),
                });
            }
        }
        if let Some(user) = &self.user {
            if user.is_empty() || user.contains(char::is_whitespace) {
                return Err(Error::InvalidOption {
                    option: "user",
                    value: user.clone(),
                    reason: "expected a name, uid or uid:gid".into(),
                });
            }
        }
        if let Some(workdir) = &self.workdir {
            if !workdir.starts_with('/') {
                return Err(Error::InvalidOption {
                    option: "workdir",
                    value: workdir.clone(),
                    reason: "it must be an absolute path".into(),
                });
            }
        }
        Ok(())
    }
}

/// The config of an empty (`scratch`) image for `platform`.
pub(crate) fn scratch_config(platform: &Platform) -> Value {
    json!({
        "architecture": platform.architecture(),
        "os": platform.os(),
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    })
}

/// Apply `edits` (already checked) to `config` in place.
pub(crate) fn apply_edits(config: &mut Value, edits: &ConfigEdits) -> Result<()> {
    let root = config.as_object_mut().ok_or_else(|| malformed("the config is not a JSON object"))?;
    let run = object_entry(root, "config")?;
    if let Some(entrypoint) = &edits.entrypoint {
        run.insert("Entrypoint".into(), json!(entrypoint));
        if edits.cmd.is_none() {
            run.remove("Cmd");
        }
    }
    match &edits.cmd {
        Some(args) if args.is_empty() => {
            run.remove("Cmd");
        }
        Some(args) => {
            run.insert("Cmd".into(), json!(args));
        }
        None => {}
    }
    if !edits.env.is_empty() {
        let mut env: Vec<String> = match run.get("Env") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        for (key, value) in &edits.env {
            let entry = format!("{key}={value}");
            match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        run.insert("Env".into(), json!(env));
    }
    if let Some(user) = &edits.user {
        run.insert("User".into(), json!(user));
    }
    if let Some(workdir) = &edits.workdir {
        run.insert("WorkingDir".into(), json!(workdir));
    }
    if !edits.labels.is_empty() {
        let labels = object_entry(run, "Labels")?;
        for (k, v) in &edits.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    Ok(())
}

/// Set the platform and creation time of `config`.
pub(crate) fn set_platform(config: &mut Value, platform: &Platform, created: &str) -> Result<()> {
    let root = config.as_object_mut().ok_or_else(|| malformed("the config is not a JSON object"))?;
    root.insert("architecture".into(), json!(platform.architecture()));
    root.insert("os".into(), json!(platform.os()));
    match platform.variant() {
        Some(v) => root.insert("variant".into(), json!(v)),
        None => root.remove("variant"),
    };
    root.insert("created".into(), json!(created));
    Ok(())
}

/// Record a new top layer: its diff_id, and a history entry.
pub(crate) fn append_layer(config: &mut Value, diff_id: &str, created: &str, created_by: &str) -> Result<()> {
    let root = config.as_object_mut().ok_or_else(|| malformed("the config is not a JSON object"))?;
    let rootfs = object_entry(root, "rootfs")?;
    rootfs.insert("type".into(), json!("layers"));
    array_entry(rootfs, "diff_ids")?.push(json!(diff_id));
    array_entry(root, "history")?.push(json!({
        "created": created,
        "created_by": created_by,
    }));
    Ok(())
}

fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> Result<&'m mut Map<String, Value>> {
    let slot = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut().ok_or_else(|| malformed(&format!("the config's {key} is not an object")))
}

fn array_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> Result<&'m mut Vec<Value>> {
    let slot = map.entry(key.to_string()).or_insert_with(|| json!([]));
    if slot.is_null() {
        *slot = json!([]);
    }
    slot.as_array_mut().ok_or_else(|| malformed(&format!("the config's {key} is not an array")))
}

fn malformed(reason: &str) -> Error {
    Error::InvalidOption { option: "base image config", value: String::new(), reason: reason.to_string() }
}

/// RFC 3339 UTC time for seconds since the Unix epoch (`1970-01-01T00:00:00Z`).
pub(crate) fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn edits_keep_unknown_fields_and_merge_env() {
        let mut config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Healthcheck": {"Test": ["NONE"]}, "User": "1"},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}],
        });
        let platform: Platform = "linux/arm64".parse().unwrap();
        let env = vec![("A".to_string(), "2".to_string()), ("B".to_string(), "x=y".to_string())];
        let labels = BTreeMap::from([("l".to_string(), "v".to_string())]);
        let edits = ConfigEdits {
            entrypoint: Some(vec!["/app".into()]),
            env,
            workdir: Some("/w".into()),
            labels,
            ..ConfigEdits::default()
        };
        edits.check().unwrap();
        apply_edits(&mut config, &edits).unwrap();
        set_platform(&mut config, &platform, "1970-01-01T00:00:00Z").unwrap();
        append_layer(&mut config, "sha256:new", "1970-01-01T00:00:00Z", "zeroimage test").unwrap();
        let run = &config["config"];
        assert_eq!(run["Env"], json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(run["Entrypoint"], json!(["/app"]));
        assert!(run.get("Cmd").is_none());
        assert_eq!(run["Healthcheck"], json!({"Test": ["NONE"]}));
        assert_eq!(run["User"], json!("1"));
        assert_eq!(run["WorkingDir"], json!("/w"));
        assert_eq!(run["Labels"], json!({"l": "v"}));
        assert_eq!(config["architecture"], json!("arm64"));
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:base", "sha256:new"]));
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
    }
}
