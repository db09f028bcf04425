//! The command line: `--version`, `check-config` on good and broken files, usage errors.
mod common;

use common::{bin, TempDir};
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run pirouterd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_prints_the_crate_version() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("pirouterd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/pirouterd.toml");
    let (code, out, err) = run(&["check-config", example]);
    // The example names /etc/pirouterd/token, which does not exist here: that is the one
    // problem allowed, and it must say how to create it.
    if code != 0 {
        let problems: Vec<&str> = err.lines().filter(|l| !l.ends_with("problem(s)")).collect();
        assert_eq!(problems.len(), 1, "{err}");
        assert!(
            problems[0].contains("http.token_file") && problems[0].contains("head -c 32"),
            "{err}"
        );
    } else {
        assert!(out.contains(": ok"));
    }
}

#[test]
fn check_config_reports_every_problem_with_its_line() {
    let dir = TempDir::new("cfg");
    let f = dir.file(
        "bad.toml",
        "[http]\nlisten = [\"300.1.1.1:80\"]\n\n[wan]\ndown_after = \"ten seconds\"\nra_block = \"sometimes\"\n\n\
         [[relay]]\nname = \"fire\"\npin = 40\n\n[[relay]]\nname = \"fire\"\npin = 5\nmax_onn = \"1h\"\n",
    );
    let (code, _, err) = run(&["check-config", f.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{err}");
    let file = f.to_str().expect("utf8");
    for (line, key) in [
        (2, "http.listen[0]"),
        (5, "wan.down_after"),
        (6, "wan.ra_block"),
        (10, "relay[0].pin"),
        (13, "relay[1].name"),
        (15, "relay[1].max_onn"),
    ] {
        let want = format!("{file}:{line}: {key}:");
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("did you mean `max_on`?"), "{err}");
    assert!(err.contains("6 problem(s)"), "{err}");
}

#[test]
fn check_config_flags_a_world_readable_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("tok");
    let token = dir.file("token", "abcdefghijklmnopqrstuvwxyz");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let f = dir.file(
        "p.toml",
        &format!("[http]\ntoken_file = \"{}\"\n", token.display()),
    );
    let (code, _, err) = run(&["check-config", f.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains("world-readable"), "{err}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, out, err) = run(&["check-config", f.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&["serve", "--listen", "not-an-address"]).0, 2);
    assert_eq!(run(&["check-config"]).0, 2);
}
