//! The image config: created from scratch or taken from a base, and edited as JSON so that
//! fields zeroimage does not model (Healthcheck, OnBuild, Shell, …) survive untouched.

use crate::error::{Error, Result};
use crate::platform::Platform;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What a build changes in the config.
#[derive(Debug)]
pub(crate) struct ConfigChanges<'a> {
    pub platform: &'a Platform,
    pub entrypoint: Vec<String>,
    /// `Some` replaces Cmd; `None` removes the base's Cmd.
    pub cmd: Option<&'a [String]>,
    /// Merged over the base's Env by key, in order.
    pub env: &'a [(String, String)],
    pub user: Option<&'a str>,
    pub workdir: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    pub diff_id: &'a str,
    pub created: &'a str,
    pub created_by: String,
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

/// Apply `changes` to `config` in place.
pub(crate) fn apply(config: &mut Value, changes: &ConfigChanges<'_>) -> Result<()> {
    let root = config.as_object_mut().ok_or_else(|| malformed("the config is not a JSON object"))?;
    root.insert("architecture".into(), json!(changes.platform.architecture()));
    root.insert("os".into(), json!(changes.platform.os()));
    match changes.platform.variant() {
        Some(v) => root.insert("variant".into(), json!(v)),
        None => root.remove("variant"),
    };
    root.insert("created".into(), json!(changes.created));

    let run = object_entry(root, "config")?;
    run.insert("Entrypoint".into(), json!(changes.entrypoint));
    match changes.cmd {
        Some(args) => run.insert("Cmd".into(), json!(args)),
        None => run.remove("Cmd"),
    };
    if !changes.env.is_empty() {
        let mut env: Vec<String> = match run.get("Env") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        for (key, value) in changes.env {
            let entry = format!("{key}={value}");
            match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        run.insert("Env".into(), json!(env));
    }
    if let Some(user) = changes.user {
        run.insert("User".into(), json!(user));
    }
    if let Some(workdir) = changes.workdir {
        run.insert("WorkingDir".into(), json!(workdir));
    }
    if !changes.labels.is_empty() {
        let labels = object_entry(run, "Labels")?;
        for (k, v) in changes.labels {
            labels.insert(k.clone(), json!(v));
        }
    }

    append_layer(config, changes.diff_id, changes.created, &changes.created_by)
}

/// Add a layer's `diff_id` and its history entry to `config`.
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
        apply(
            &mut config,
            &ConfigChanges {
                platform: &platform,
                entrypoint: vec!["/app".into()],
                cmd: None,
                env: &env,
                user: None,
                workdir: Some("/w"),
                labels: &labels,
                diff_id: "sha256:new",
                created: "1970-01-01T00:00:00Z",
                created_by: "zeroimage test".into(),
            },
        )
        .unwrap();
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
