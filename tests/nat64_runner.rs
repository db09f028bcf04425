//! The `jool` runner and the Jool source against real processes: the fake client in
//! `tests/fixtures/fake-jool/jool` prints the recorded fixtures, or fails the way the real
//! client fails (each recorded stderr and exit code), hangs, prints nothing, prints garbage,
//! crashes, floods, or is missing.
#![allow(clippy::unwrap_used)]

use pirouterd::nat64::{InstanceStatus, Nat64Source, ProblemCode, Proto};
use pirouterd::sys::jool::{JoolError, JoolRunner, JoolSource, JoolSourceConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory holding a `jool` wrapper that runs the fake with some environment;
/// removed on drop.
struct FakeJool {
    dir: PathBuf,
}

impl FakeJool {
    fn new(env: &[(&str, &str)]) -> FakeJool {
        let dir = std::env::temp_dir().join(format!(
            "pr-fakejool-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-jool/jool");
        let mut script = String::from("#!/bin/sh\n");
        for (k, v) in env {
            script.push_str(&format!("export {k}='{v}'\n"));
        }
        script.push_str(&format!("exec '{}' \"$@\"\n", fake.display()));
        let path = dir.join("jool");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeJool { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("jool")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn source(&self, instances: &[&str]) -> JoolSource {
        let mut cfg = JoolSourceConfig::new(self.path());
        cfg.instances = instances.iter().map(|s| s.to_string()).collect();
        cfg.timeout = Duration::from_secs(5);
        JoolSource::new(cfg)
    }

    fn runner(&self, timeout: Duration) -> JoolRunner {
        let mut r = JoolRunner::new(self.path());
        r.timeout = timeout;
        r
    }
}

impl Drop for FakeJool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process is gone when its /proc entry is gone, or it is a zombie someone else (init)
/// must reap: never our child.
fn gone_or_not_ours(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let after = stat.rsplit_once(')').map(|(_, r)| r.trim()).unwrap_or("");
            let mut f = after.split_whitespace();
            let state = f.next().unwrap_or("");
            let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            state == "Z" && ppid != std::process::id()
        }
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if gone_or_not_ours(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn healthy_jool_gives_the_whole_picture() {
    let fake = FakeJool::new(&[]);
    let snap = fake.source(&[]).sample(1_700_000_000_000);
    assert_eq!(snap.taken_at_ms, 1_700_000_000_000);
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    // `guest` is listed by `instance display` but lives in another namespace: skipped.
    assert_eq!(snap.instances.len(), 1);
    let i = &snap.instances[0];
    assert_eq!(i.name, "default");
    assert_eq!(i.namespace.as_deref(), Some("b2f1c0c0"));
    assert_eq!(i.framework.as_deref(), Some("netfilter"));
    assert_eq!(i.status, InstanceStatus::Running);
    assert!(i.problems.is_empty(), "{:?}", i.problems);
    assert!(i.up() && snap.up());
    assert_eq!(snap.reason(), None);
    assert_eq!(i.sessions.sessions.len(), 16);
    assert_eq!(i.summary.total, 16);
    assert_eq!(i.stats.len(), 83);
    assert_eq!(i.pool4.as_ref().map(Vec::len), Some(1));
    let tcp = i
        .summary
        .pool4
        .iter()
        .find(|u| u.proto == Proto::Tcp)
        .unwrap();
    assert_eq!((tcp.ports_used, tcp.ports_total), (9, 4535));
    assert_eq!(
        i.summary.top_clients[0].address.to_string(),
        "2001:db8:100::1a"
    );
}

#[test]
fn configured_instances_missing_one_is_reported() {
    let fake = FakeJool::new(&[]);
    let snap = fake.source(&["default", "nat64"]).sample(0);
    assert_eq!(snap.instances.len(), 2);
    assert!(snap.instances[0].up());
    let missing = &snap.instances[1];
    assert!(!missing.up());
    assert!(matches!(missing.status, InstanceStatus::Dead(_)));
    assert_eq!(missing.problems.len(), 1);
    assert_eq!(missing.problems[0].code, ProblemCode::InstanceMissing);
    assert!(missing.problems[0]
        .message
        .contains("jool instance add nat64"));
    assert!(!snap.up());
    assert!(snap.reason().unwrap().starts_with("instance nat64: "));
}

#[test]
fn instance_missing_at_session_time_maps_exit_3() {
    // Status says Running (FAKE_JOOL_INSTANCES lists it only for status), the rest exit 3.
    let fake = FakeJool::new(&[("FAKE_JOOL_INSTANCES", "other")]);
    let r = fake.runner(Duration::from_secs(5));
    let out = r
        .run(&[
            "-i",
            "nat64",
            "session",
            "display",
            "--numeric",
            "--csv",
            "--tcp",
        ])
        .unwrap();
    assert_eq!(out.code, Some(3));
    assert!(
        out.stdout.starts_with(b"Protocol,"),
        "header printed even on errors"
    );
    let e = pirouterd::sys::jool::classify("x", "nat64", &out).unwrap_err();
    assert!(matches!(e, JoolError::InstanceMissing { .. }), "{e:?}");
}

fn only_problem(
    env: &[(&str, &str)],
    instances: &[&str],
) -> (pirouterd::nat64::Nat64Snapshot, Vec<ProblemCode>) {
    let fake = FakeJool::new(env);
    let snap = fake.source(instances).sample(0);
    let codes = snap.all_problems().map(|(_, p)| p.code).collect();
    (snap, codes)
}

#[test]
fn module_not_loaded_stops_at_discovery() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "module-not-loaded")], &[]);
    assert_eq!(codes, [ProblemCode::ModuleNotLoaded]);
    assert!(snap.instances.is_empty());
    assert!(!snap.up());
    assert!(snap.reason().unwrap().contains("modprobe jool"));
    // Named instance: status exits 253 (printing Dead), nothing else is run.
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "module-not-loaded")], &["default"]);
    assert_eq!(codes, [ProblemCode::ModuleNotLoaded]);
    assert_eq!(snap.instances[0].status, InstanceStatus::Dead(None));
}

#[test]
fn nat64_module_not_loaded() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "nat64-not-loaded")], &["default"]);
    assert_eq!(codes, [ProblemCode::Nat64ModuleNotLoaded]);
    assert_eq!(snap.instances[0].status, InstanceStatus::Unknown);
}

#[test]
fn no_capability_still_reads_counters() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "no-cap")], &["default"]);
    // Said once although status, three session runs and pool4 all failed with it.
    assert_eq!(codes, [ProblemCode::NoCapability]);
    let i = &snap.instances[0];
    assert_eq!(i.stats.len(), 83, "stats display needs no capability");
    assert!(i.stats_read && !i.sessions_read && !i.up());
    assert!(i.pool4.is_none());
    assert!(i.problems[0]
        .message
        .contains("AmbientCapabilities=CAP_NET_ADMIN"));
    // Discovery itself needs the capability.
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "no-cap")], &[]);
    assert_eq!(codes, [ProblemCode::NoCapability]);
    assert!(snap.instances.is_empty());
}

#[test]
fn version_mismatch() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "version-mismatch")], &["default"]);
    assert_eq!(codes, [ProblemCode::VersionMismatch]);
    assert!(snap
        .reason()
        .unwrap()
        .contains("4.1.15.0 and kernel module 4.1.8.0"));
}

#[test]
fn old_client_keeps_the_counters_before_the_unknown_one() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "old-client")], &[]);
    assert_eq!(codes, [ProblemCode::ClientTooOld]);
    let i = &snap.instances[0];
    assert_eq!(i.stats.len(), 68);
    assert_eq!(i.stats.last().unwrap().name, "JSTAT_ICMPEXT_BIG");
    assert!(i.problems[0].message.ends_with("(68 counters read)"));
    // Sessions are fine: NAT64 is up; the problem still degrades the component.
    assert!(i.up() && snap.up());
    assert!(snap
        .reason()
        .unwrap()
        .contains("update the userspace client"));
}

#[test]
fn v419_counters_and_empty_tables() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "v419")], &[]);
    assert!(codes.is_empty());
    assert_eq!(snap.instances[0].stats.len(), 69);
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "empty-table")], &[]);
    assert!(codes.is_empty());
    assert!(snap.up());
    assert_eq!(snap.instances[0].summary.total, 0);
}

#[test]
fn names_instead_of_numbers_are_bad_output() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "unnumeric")], &[]);
    assert_eq!(codes, [ProblemCode::BadOutput]);
    let i = &snap.instances[0];
    assert!(!i.sessions_read);
    // The unreadable TCP table leaves nothing behind; UDP and ICMP still count.
    assert_eq!(i.summary.total, 7);
    assert!(
        i.problems[0].message.contains("--numeric"),
        "{}",
        i.problems[0].message
    );
}

#[test]
fn empty_and_garbage_output_are_typed_errors() {
    let (_, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "empty")], &[]);
    assert_eq!(codes, [ProblemCode::BadOutput]);
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "empty")], &["default"]);
    assert_eq!(codes, [ProblemCode::BadOutput]);
    assert!(snap.reason().unwrap().contains("jool printed nothing"));
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "garbage")], &["default"]);
    assert_eq!(codes, [ProblemCode::BadOutput]);
    assert!(
        snap.reason().unwrap().contains("not text"),
        "{:?}",
        snap.reason()
    );
    // Garbage only in the session table: status and counters still read.
    let (snap, codes) = only_problem(
        &[
            ("FAKE_JOOL_SCENARIO", "garbage"),
            ("FAKE_JOOL_ONLY", "session"),
        ],
        &[],
    );
    assert_eq!(codes, [ProblemCode::BadOutput]);
    assert!(snap.instances[0].stats_read);
    assert_eq!(snap.instances[0].status, InstanceStatus::Running);
}

#[test]
fn unexpected_exit_code_keeps_stderr() {
    let (snap, codes) = only_problem(&[("FAKE_JOOL_SCENARIO", "exit:42")], &["default"]);
    assert_eq!(codes, [ProblemCode::Failed]);
    let r = snap.reason().unwrap();
    assert!(
        r.contains("exit code 42") && r.contains("something unexpected happened"),
        "{r}"
    );
}

#[test]
fn crash_is_reported_with_the_signal() {
    let fake = FakeJool::new(&[("FAKE_JOOL_SCENARIO", "crash")]);
    let out = fake
        .runner(Duration::from_secs(5))
        .run(&["stats", "display", "--csv"])
        .unwrap();
    assert_eq!((out.code, out.signal), (None, Some(11)));
    let e = pirouterd::sys::jool::classify("c", "default", &out).unwrap_err();
    assert!(matches!(e, JoolError::Crashed { signal: 11, .. }), "{e:?}");
}

#[test]
fn missing_and_unrunnable_jool() {
    let fake = FakeJool::new(&[]);
    let mut cfg = JoolSourceConfig::new(fake.file("no-such-jool"));
    cfg.instances = vec![];
    let snap = JoolSource::new(cfg).sample(0);
    let codes: Vec<_> = snap.all_problems().map(|(_, p)| p.code).collect();
    assert_eq!(codes, [ProblemCode::NotInstalled]);
    assert!(snap.reason().unwrap().contains("apt install jool-tools"));

    let plain = fake.file("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let e = JoolRunner::new(&plain)
        .run(&["instance", "status"])
        .unwrap_err();
    assert!(matches!(e, JoolError::Spawn { .. }), "{e:?}");
}

#[test]
fn hang_is_killed_with_its_children_and_reaped() {
    let fake = FakeJool::new(&[("FAKE_JOOL_SCENARIO", "hang")]);
    let pidfile = fake.file("pids");
    let fake = FakeJool::new(&[
        ("FAKE_JOOL_SCENARIO", "hang"),
        ("FAKE_JOOL_PIDFILE", pidfile.to_str().unwrap()),
    ]);
    let t0 = Instant::now();
    let e = fake
        .runner(Duration::from_millis(400))
        .run(&[
            "-i",
            "default",
            "session",
            "display",
            "--numeric",
            "--csv",
            "--tcp",
        ])
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e, JoolError::Timeout { .. }), "{e:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_secs(10),
        "{took:?}: the grandchild kept us waiting"
    );
    let pids = std::fs::read_to_string(&pidfile).unwrap();
    let pids: Vec<u32> = pids
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "shell and its sleep");
    // The shell was our child: it must be reaped already, not a zombie.
    assert!(
        gone_or_not_ours(pids[0]),
        "jool {} left as a zombie",
        pids[0]
    );
    // Its `sleep` was in the same process group and must die too.
    assert!(wait_gone(pids[1]), "grandchild {} survived", pids[1]);
}

#[test]
fn hang_after_closing_its_output_is_still_killed() {
    let fake = FakeJool::new(&[("FAKE_JOOL_SCENARIO", "hang-closed")]);
    let pidfile = fake.file("pid");
    let fake = FakeJool::new(&[
        ("FAKE_JOOL_SCENARIO", "hang-closed"),
        ("FAKE_JOOL_PIDFILE", pidfile.to_str().unwrap()),
    ]);
    let e = fake
        .runner(Duration::from_millis(300))
        .run(&["instance", "status"])
        .unwrap_err();
    assert!(matches!(e, JoolError::Timeout { .. }), "{e:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone_or_not_ours(pid), "{pid} left behind");
}

#[test]
fn flood_is_capped() {
    let fake = FakeJool::new(&[("FAKE_JOOL_SCENARIO", "flood")]);
    let mut r = fake.runner(Duration::from_secs(20));
    r.max_output = 1 << 20;
    let t0 = Instant::now();
    let e = r
        .run(&["session", "display", "--numeric", "--csv"])
        .unwrap_err();
    assert!(
        matches!(e, JoolError::OutputTooLarge { limit: 1048576, .. }),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn large_output_is_read_whole_from_both_pipes() {
    // 100,000 sessions (about 11 MB) on stdout: more than any pipe buffer, so this only passes
    // if stdout and stderr are drained together to the end.
    let dir = FakeJool::new(&[]);
    let csv = dir.file("big.csv");
    let status = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jool/gen_sessions.py"))
        .arg("100000")
        .stdout(std::fs::File::create(&csv).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let script = dir.file("bigjool");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat '{}'\nprintf 'warning\\n' >&2\nexit 0\n",
            csv.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = JoolRunner::new(&script).run(&[]).unwrap();
    assert_eq!(out.stdout, std::fs::read(&csv).unwrap());
    assert_eq!(out.stderr, b"warning\n");
    let t = pirouterd::nat64::session::parse_sessions(&out.stdout).unwrap();
    assert_eq!(t.sessions.len(), 100_000);
}

#[test]
fn never_two_runs_at_once() {
    let log = std::env::temp_dir().join(format!("pr-fakejool-log-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let fake = FakeJool::new(&[
        ("FAKE_JOOL_SCENARIO", "slow"),
        ("FAKE_JOOL_LOG", log.to_str().unwrap()),
    ]);
    let path = fake.path();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || {
                let r = JoolRunner::new(p);
                for _ in 0..2 {
                    r.run(&["instance", "status"]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let mut events: Vec<(u128, bool)> = text
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            let kind = f.next().unwrap() == "start";
            (f.next().unwrap().parse().unwrap(), kind)
        })
        .collect();
    assert_eq!(events.len(), 12, "{text}");
    events.sort();
    // Sorted by time, runs must alternate start, end, start, end...
    for (i, (_, is_start)) in events.iter().enumerate() {
        assert_eq!(*is_start, i % 2 == 0, "overlapping runs:\n{text}");
    }
}

#[test]
fn a_stop_cancels_a_hanging_run_promptly() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let fake = FakeJool::new(&[("FAKE_JOOL_SCENARIO", "hang")]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut r = fake.runner(Duration::from_secs(30));
    let flag = stop.clone();
    r.cancel = Some(Arc::new(move || flag.load(Ordering::SeqCst)));
    let setter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::SeqCst);
        })
    };
    let t0 = Instant::now();
    let e = r.run(&["instance", "status"]).unwrap_err();
    setter.join().unwrap();
    assert!(matches!(e, JoolError::Stopped { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Once stopping, nothing new starts.
    assert!(matches!(
        r.run(&["instance", "status"]),
        Err(JoolError::Stopped { .. })
    ));
}
