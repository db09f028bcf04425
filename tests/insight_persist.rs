//! The rule state file survives SIGKILL at any moment: a child process saves state in a
//! tight loop and is killed at random times, over and over; after every kill the file must
//! load whole (every entry from one and the same save), never half-written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pirouterd::firewall::identity::{Anchor, Counter, RuleKey, RuleState};
use pirouterd::firewall::persist;

const RULES: u32 = 3_000;
const ENV_DIR: &str = "PIROUTERD_PERSIST_CHILD_DIR";

/// One save's worth of state: every entry carries the save's generation, so a file mixing
/// two saves (or cut short) is detectable.
fn states(generation: u64) -> Vec<(RuleKey, RuleState)> {
    (0..RULES)
        .map(|i| {
            (
                RuleKey {
                    family: "inet".into(),
                    table: "fw".into(),
                    chain: format!("c{}", i % 50).into(),
                    anchor: Anchor::Comment(format!("rule {i} with a comment of some length")),
                    ordinal: 0,
                },
                RuleState {
                    first_seen_ms: generation,
                    last_hit_ms: Some(generation),
                    total: Counter {
                        packets: generation,
                        bytes: generation * 1500,
                    },
                    table_handle: 1,
                    handle: u64::from(i),
                    last_counter: Some(Counter::default()),
                    text_hash: 0,
                    index: 0,
                    seen: 0,
                },
            )
        })
        .collect()
}

/// Not a test on its own: the writer that `sigkill_during_writes_never_leaves_a_torn_file`
/// runs in a child process (it returns at once unless that test started it).
#[test]
#[ignore = "child process of sigkill_during_writes_never_leaves_a_torn_file"]
fn persist_child_writer() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut generation = 1u64;
    loop {
        let s = states(generation);
        persist::save(&dir, s.iter().map(|(k, s)| (k, s)), generation).expect("save");
        generation += 1;
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn check_whole(dir: &Path) -> Option<u64> {
    let l = persist::load(dir, 0);
    assert!(
        l.problem.is_none(),
        "state file unusable after SIGKILL: {:?}",
        l.problem
    );
    if l.states.is_empty() {
        return None; // killed before the first save finished
    }
    assert_eq!(l.states.len(), RULES as usize, "a save was cut short");
    let g = l.states[0].1.first_seen_ms;
    assert!(
        l.states
            .iter()
            .all(|(_, s)| s.first_seen_ms == g && s.total.packets == g),
        "entries from different saves in one file"
    );
    Some(g)
}

#[test]
fn sigkill_during_writes_never_leaves_a_torn_file() {
    let dir = std::env::temp_dir().join(format!("pr-insight-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let exe = std::env::current_exe().expect("test binary");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut rng = Rng(seed | 1);
    let (mut whole, mut last_gen) = (0, 0);
    let rounds = 60;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "persist_child_writer",
                "--test-threads=1",
            ])
            .env(ENV_DIR, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn writer");
        // Let it start and write a few files, then kill it at a random moment.
        std::thread::sleep(Duration::from_millis(30 + rng.next() % 120));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if let Some(g) = check_whole(&dir) {
            whole += 1;
            last_gen = g;
        }
        let _ = round;
    }
    eprintln!("seed {seed}: {whole}/{rounds} kills found a whole file, last generation {last_gen}");
    // A writer that never finishes a save would make this test vacuous.
    assert!(
        whole >= rounds / 2,
        "the writer rarely completed a save: {whole}/{rounds}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "load removes killed writers' temp files: {leftovers:?}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
