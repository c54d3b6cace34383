//! The CLI's machine-facing surface, checked with the programs that consume it: `--json` failures
//! parsed as JSON (exit codes unchanged), and the completion scripts loaded by bash, zsh and fish.

use std::fs;
use std::process::Command;
use zeroimage_tests::{exec, require_tool, static_hello, zeroimage};

fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn json_failures_are_json_on_stdout_with_the_same_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-program");

    let out = zeroimage(&["build".as_ref(), missing.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let json = json_stdout(&out);
    assert_eq!(json["error"]["kind"], "not_found", "{json}");
    assert!(json["error"]["message"].as_str().unwrap().contains("no-such-program"), "{json}");
    assert!(json["error"].as_object().unwrap().contains_key("hint"), "{json}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: "), "stderr keeps the human line");
    // Without --json, stdout stays empty on failure.
    let plain = zeroimage(&["build".as_ref(), missing.as_os_str()]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(plain.stdout.is_empty());

    let hello = static_hello(dir.path());
    let out =
        zeroimage(&["build".as_ref(), hello.as_os_str(), "--json".as_ref(), "--platform".as_ref(), "linux".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let json = json_stdout(&out);
    assert_eq!(json["error"]["kind"], "invalid_input", "{json}");
    assert!(json["error"]["hint"].as_str().unwrap().contains("os/arch"), "{json}");

    let out = zeroimage(&["build", "x", "--json", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "a usage error keeps exit code 2");
    let json = json_stdout(&out);
    assert_eq!(json["error"]["kind"], "invalid_input", "{json}");
    assert!(json["error"]["message"].as_str().unwrap().contains("--no-such-flag"), "{json}");

    let out = zeroimage(&["base", "builtin:nope", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(json_stdout(&out)["error"]["message"].as_str().unwrap().contains("builtin:static"));

    // A success is the result document, not an error.
    let output = dir.path().join("hello.tar");
    let out = zeroimage(&["build".as_ref(), hello.as_os_str(), "-o".as_ref(), output.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json = json_stdout(&out);
    assert!(json["digest"].as_str().unwrap().starts_with("sha256:"), "{json}");
    assert!(json.get("error").is_none());
}

#[test]
fn build_help_names_builtin_static() {
    let out = zeroimage(&["build", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("builtin:static"));
}

fn completion_script(shell: &str) -> std::path::PathBuf {
    let out = zeroimage(&["completion", shell]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let path = std::env::temp_dir().join(format!("zeroimage-completion-{}.{shell}", std::process::id()));
    fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn bash_completes_subcommands_and_flags() {
    require_tool("bash");
    let script = completion_script("bash");
    let complete = |words: &str| {
        let out = exec(Command::new("bash").arg("-c").arg(format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _zeroimage zeroimage; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        )));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let subcommands = complete("zeroimage ''");
    for sub in ["build", "base", "login", "logout", "completion"] {
        assert!(subcommands.lines().any(|l| l == sub), "{sub} missing from {subcommands}");
    }
    let flags = complete("zeroimage build --fr");
    assert!(flags.lines().any(|l| l == "--from"), "{flags}");
    assert!(flags.lines().any(|l| l == "--from-archive"), "{flags}");
    fs::remove_file(script).unwrap();
}

#[test]
fn zsh_and_fish_load_their_scripts() {
    require_tool("zsh");
    require_tool("fish");
    let zsh = completion_script("zsh");
    let out = exec(Command::new("zsh").arg("-n").arg(&zsh));
    assert!(out.status.success(), "zsh -n: {}", String::from_utf8_lossy(&out.stderr));
    let fish = completion_script("fish");
    let out = exec(
        Command::new("fish").arg("-c").arg(format!("source {}; complete -C 'zeroimage build --fr'", fish.display())),
    );
    assert!(out.status.success(), "fish: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.lines().any(|l| l.starts_with("--from\t") || l == "--from"), "{listed}");
    let out =
        exec(Command::new("fish").arg("-c").arg(format!("source {}; complete -C 'zeroimage compl'", fish.display())));
    assert!(String::from_utf8_lossy(&out.stdout).contains("completion"));
    fs::remove_file(zsh).unwrap();
    fs::remove_file(fish).unwrap();
}
