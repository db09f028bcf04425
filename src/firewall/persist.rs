//! First-seen and last-hit times (and totals) of every rule, kept across daemon restarts in
//! `<state dir>/firewall-rules.json`.
//!
//! Written with [`crate::sys::atomic_file`] (temp file, fsync, rename), so a crash at any
//! moment leaves the previous file or the new one. A file that cannot be parsed anyway
//! (disk trouble, a hand edit) is reported, moved aside as `firewall-rules.json.corrupt-<ms>`
//! for the operator, and the daemon starts fresh: never fatal. Temp files left by a killed
//! writer are removed on load.
//!
//! The file is rewritten whole; the daemon saves at most every [`SAVE_EVERY_MS`] (SD cards
//! wear), after a reload, and on shutdown.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::{RuleKey, RuleState};
use crate::sys::atomic_file::{self, AtomicFileError};

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "firewall-rules.json";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// Least time between two periodic saves.
pub const SAVE_EVERY_MS: u64 = 10 * 60_000;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u32,
    saved_ms: u64,
    rules: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: RuleKey,
    state: RuleState,
}

/// Why the rule state file could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON of the expected shape: truncated, edited by hand, or disk corruption.
    #[error("not a valid rule state file")]
    Syntax(#[source] serde_json::Error),
    /// Written by a newer pirouterd.
    #[error("rule state file has version {found}, this build reads version {VERSION}")]
    Version { found: u32 },
}

/// Why rule state could not be loaded or saved. Loading problems are never fatal: the
/// daemon starts with fresh first-seen times.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file exists but could not be read: check its permissions and the state dir.
    #[error("cannot read the rule state file")]
    Read(#[source] AtomicFileError),
    /// The file could not be decoded; it was moved to `set_aside` (kept for inspection).
    #[error("rule state file {path} is unusable, moved it to {set_aside}; starting fresh")]
    Corrupt {
        path: PathBuf,
        set_aside: PathBuf,
        #[source]
        source: DecodeError,
    },
    /// The file could not be decoded, and moving it aside failed too: check permissions on
    /// the state directory. It will be overwritten by the next save.
    #[error("rule state file {path} is unusable and could not be moved aside ({decode}); starting fresh")]
    CorruptKept {
        path: PathBuf,
        decode: DecodeError,
        #[source]
        source: std::io::Error,
    },
    /// Writing the file failed: check that the state directory exists, is writable, and the
    /// disk is not full.
    #[error("cannot save rule state")]
    Write(#[source] AtomicFileError),
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub states: Vec<(RuleKey, RuleState)>,
    /// A problem to report (the daemon carries on without the file's contents).
    pub problem: Option<PersistError>,
    /// Temp files of killed writers that were removed.
    pub stale_removed: usize,
}

/// Encodes rule states (pure).
pub fn encode<'a>(
    states: impl IntoIterator<Item = (&'a RuleKey, &'a RuleState)>,
    now_ms: u64,
) -> Vec<u8> {
    let file = FileV1 {
        version: VERSION,
        saved_ms: now_ms,
        rules: states
            .into_iter()
            .map(|(k, s)| Entry {
                key: k.clone(),
                state: s.clone(),
            })
            .collect(),
    };
    // Serialising plain structs of strings and integers to a Vec cannot fail.
    serde_json::to_vec(&file).unwrap_or_default()
}

/// Decodes a state file (pure).
pub fn decode(data: &[u8]) -> Result<Vec<(RuleKey, RuleState)>, DecodeError> {
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let head: Head = serde_json::from_slice(data).map_err(DecodeError::Syntax)?;
    if head.version != VERSION {
        return Err(DecodeError::Version {
            found: head.version,
        });
    }
    let f: FileV1 = serde_json::from_slice(data).map_err(DecodeError::Syntax)?;
    Ok(f.rules.into_iter().map(|e| (e.key, e.state)).collect())
}

/// Path of the state file in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Loads the rule states from `dir`. Never fails: problems are in [`Loaded::problem`].
pub fn load(dir: &Path, now_ms: u64) -> Loaded {
    let path = path_in(dir);
    let stale_removed = remove_stale_temps(dir);
    let data = match atomic_file::read(&path) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Loaded {
                stale_removed,
                ..Loaded::default()
            }
        }
        Err(e) => {
            return Loaded {
                problem: Some(PersistError::Read(e)),
                stale_removed,
                ..Loaded::default()
            }
        }
    };
    match decode(&data) {
        Ok(states) => Loaded {
            states,
            problem: None,
            stale_removed,
        },
        Err(decode) => {
            let problem = match atomic_file::set_aside(&path, now_ms) {
                Ok(set_aside) => PersistError::Corrupt {
                    path,
                    set_aside,
                    source: decode,
                },
                Err(source) => PersistError::CorruptKept {
                    path,
                    decode,
                    source,
                },
            };
            Loaded {
                states: Vec::new(),
                problem: Some(problem),
                stale_removed,
            }
        }
    }
}

/// Saves rule states to `dir` atomically.
pub fn save<'a>(
    dir: &Path,
    states: impl IntoIterator<Item = (&'a RuleKey, &'a RuleState)>,
    now_ms: u64,
) -> Result<(), PersistError> {
    atomic_file::write(&path_in(dir), &encode(states, now_ms)).map_err(PersistError::Write)
}

/// Removes `firewall-rules.json.tmp-<pid>` files that are not this process's: a writer
/// killed between creating its temp file and the rename leaves one behind.
fn remove_stale_temps(dir: &Path) -> usize {
    let mine = format!("{FILE_NAME}.tmp-{}", std::process::id());
    let prefix = format!("{FILE_NAME}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&prefix) && name != mine && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::identity::{Anchor, Counter};

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pr-persist-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn entry(i: u32) -> (RuleKey, RuleState) {
        (
            RuleKey {
                family: "inet".into(),
                table: "fw".into(),
                chain: "in".into(),
                anchor: if i % 2 == 0 {
                    Anchor::Comment(format!("rule \"{i}\""))
                } else {
                    Anchor::Text(u64::MAX - u64::from(i))
                },
                ordinal: i % 3,
            },
            RuleState {
                first_seen_ms: 1_000 + u64::from(i),
                last_hit_ms: (i % 4 == 0).then_some(9_000),
                total: Counter {
                    packets: u64::from(i),
                    bytes: u64::MAX,
                },
                table_handle: 1,
                handle: u64::from(i) + 4,
                last_counter: (i % 5 != 0).then_some(Counter::default()),
                text_hash: 42,
                index: 0,
                seen: 0,
            },
        )
    }

    #[test]
    fn round_trip() {
        let dir = tmpdir("rt");
        let states: Vec<_> = (0..20).map(entry).collect();
        save(&dir, states.iter().map(|(k, s)| (k, s)), 5).expect("save");
        let l = load(&dir, 6);
        assert!(l.problem.is_none(), "{:?}", l.problem);
        assert_eq!(l.states, states);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn missing_file_is_a_fresh_start() {
        let dir = tmpdir("missing");
        let l = load(&dir, 1);
        assert!(l.states.is_empty() && l.problem.is_none());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn truncated_file_is_reported_and_set_aside() {
        let dir = tmpdir("trunc");
        let states: Vec<_> = (0..5).map(entry).collect();
        let full = encode(states.iter().map(|(k, s)| (k, s)), 5);
        fs::write(path_in(&dir), &full[..full.len() / 2]).expect("write");
        let l = load(&dir, 77);
        assert!(l.states.is_empty());
        match l.problem {
            Some(PersistError::Corrupt { ref set_aside, .. }) => {
                assert!(set_aside.to_string_lossy().ends_with(".corrupt-77"));
                assert_eq!(fs::read(set_aside).expect("kept"), &full[..full.len() / 2]);
            }
            ref other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(!path_in(&dir).exists());
        // The next save and load work.
        save(&dir, states.iter().map(|(k, s)| (k, s)), 6).expect("save");
        assert_eq!(load(&dir, 78).states, states);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn other_version_and_garbage_are_refused() {
        assert!(matches!(
            decode(br#"{"version":2,"saved_ms":0,"rules":[]}"#),
            Err(DecodeError::Version { found: 2 })
        ));
        assert!(decode(b"\x00\xff").is_err());
        assert!(decode(br#"{"version":1,"saved_ms":0,"rules":[{"key":{}}]}"#).is_err());
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tmpdir("stale");
        fs::write(dir.join(format!("{FILE_NAME}.tmp-999999999")), b"{\"vers").expect("w");
        fs::write(dir.join("unrelated.tmp-1"), b"x").expect("w");
        let l = load(&dir, 1);
        assert_eq!(l.stale_removed, 1);
        assert!(dir.join("unrelated.tmp-1").exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
