//! Sample Jool for `pirouterd demo` (and anyone without Jool): the fake `jool` client from
//! `tests/fixtures/fake-jool/` and the byte-exact recordings it prints, embedded at build time
//! and written out to a directory. The daemon then runs it like the real client; the API and
//! page label the data as sample data.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

macro_rules! fx {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../tests/fixtures/jool/", $name)).as_slice(),
        )
    };
}

/// The recordings the fake client prints.
const FIXTURES: &[(&str, &[u8])] = &[
    fx!("bib-display.csv"),
    fx!("error-instance-not-found.txt"),
    fx!("error-module-not-loaded.txt"),
    fx!("error-nat64-not-loaded.txt"),
    fx!("error-no-cap.txt"),
    fx!("error-stats-unknown-counter.txt"),
    fx!("error-version-mismatch.txt"),
    fx!("global-display.csv"),
    fx!("instance-display.csv"),
    fx!("instance-display.txt"),
    fx!("instance-status-dead.txt"),
    fx!("instance-status.txt"),
    fx!("pool4-display.csv"),
    fx!("session-empty.csv"),
    fx!("session-empty.txt"),
    fx!("session-icmp.csv"),
    fx!("session-tcp-resolved.csv"),
    fx!("session-tcp.csv"),
    fx!("session-tcp.txt"),
    fx!("session-udp.csv"),
    fx!("stats-all-4.1.9.csv"),
    fx!("stats-all.csv"),
    fx!("stats-explain.csv"),
    fx!("stats.csv"),
    fx!("stats.txt"),
];

/// The fake client (a POSIX shell script).
const FAKE_JOOL: &[u8] = include_bytes!("../../tests/fixtures/fake-jool/jool");

/// Writes `DIR/fake-jool/jool` and `DIR/jool/*` and returns the client's path.
pub fn prepare(dir: &Path) -> std::io::Result<PathBuf> {
    let fixtures = dir.join("jool");
    let bin = dir.join("fake-jool");
    std::fs::create_dir_all(&fixtures)?;
    std::fs::create_dir_all(&bin)?;
    for (name, data) in FIXTURES {
        std::fs::write(fixtures.join(name), data)?;
    }
    let path = bin.join("jool");
    std::fs::write(&path, FAKE_JOOL)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_the_recordings() {
        let dir = std::env::temp_dir().join(format!("pr-nat64-demo-{}", std::process::id()));
        let jool = prepare(&dir).unwrap();
        assert!(jool.ends_with("fake-jool/jool"));
        let want = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jool/session-tcp.csv"
        ))
        .unwrap();
        assert_eq!(
            std::fs::read(dir.join("jool/session-tcp.csv")).unwrap(),
            want
        );
        let out = std::process::Command::new(&jool)
            .args([
                "-i",
                "default",
                "session",
                "display",
                "--numeric",
                "--csv",
                "--tcp",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
