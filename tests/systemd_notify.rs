//! The systemd protocol as a unit under `Type=notify` and `WatchdogSec=` sees it: READY=1 once
//! serving, WATCHDOG=1 at half the interval, STOPPING=1 on SIGTERM; and journald-style log
//! lines (`<6>...`) when stderr is the journal.
mod common;

use common::{ChildGuard, TempDir};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ready_watchdog_and_stopping_are_sent() {
    let dir = TempDir::new("notify");
    let sock_path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let cfg = dir.file("p.toml", "[nat64]\nenabled = false\n");
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "serve",
        "--config",
        cfg.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ])
    .env("NOTIFY_SOCKET", &sock_path)
    .env("WATCHDOG_USEC", "400000")
    .env("JOURNAL_STREAM", "8:12345")
    .stderr(Stdio::piped());
    let mut d = ChildGuard::spawn(cmd);
    let mut stderr = d
        .child
        .as_mut()
        .and_then(|c| c.stderr.take())
        .expect("stderr pipe");
    let mut buf = [0u8; 256];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notify message");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(recv(), "READY=1");
    let t = Instant::now();
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1");
    let two = t.elapsed();
    assert!(
        two < Duration::from_millis(1500),
        "watchdog pings come at about half of 400 ms, took {two:?}"
    );
    let status = {
        let _ = Command::new("kill")
            .args(["-TERM", &d.pid().to_string()])
            .status();
        let mut seen = recv();
        while seen == "WATCHDOG=1" {
            seen = recv();
        }
        assert_eq!(seen, "STOPPING=1");
        d.signal_and_wait("TERM", Duration::from_secs(10))
            .expect("exits")
    };
    assert!(status.success());
    let mut err = String::new();
    use std::io::Read;
    stderr.read_to_string(&mut err).expect("read stderr");
    assert!(
        err.lines().any(|l| l.starts_with("<6>")),
        "journald priority prefixes:\n{err}"
    );
    assert!(
        !err.contains("INFO"),
        "no human level words under journald:\n{err}"
    );
}
