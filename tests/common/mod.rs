//! Shared helpers for integration tests: throwaway network namespaces, veth pairs,
//! and child processes that are always cleaned up, even when a test panics.
//!
//! Everything here needs root (CI is root). Nothing here talks to any address outside
//! the namespaces a test creates itself.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace created with `ip netns add`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `pr-<tag>-<pid>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("pr-{tag}-{}-{n}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and returns its output (any exit code).
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        Command::new(full[0])
            .args(&full[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {full:?}: {e}"))
    }

    /// Runs a command inside the namespace; panics with its stderr if it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads a ruleset with `nft -f -`; panics with nft's message if it is refused.
    pub fn nft_load(&self, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ruleset.as_bytes())
            .expect("write ruleset");
        let out = child.wait_with_output().expect("wait nft");
        assert!(
            out.status.success(),
            "nft -f refused the ruleset: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `nft -j list ruleset` in the namespace, parsed.
    pub fn nft_json(&self) -> serde_json::Value {
        let out = self.run(&["nft", "-j", "list", "ruleset"]);
        serde_json::from_str(&out).expect("nft -j output is JSON")
    }

    /// Creates a veth pair `a` (here) <-> `b` (in `peer`), with addresses (CIDR) and up.
    pub fn veth(&self, a: &str, a_addr: &str, peer: &Netns, b: &str, b_addr: &str) {
        self.run(&[
            "ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", &peer.name,
        ]);
        for addr in a_addr.split(',').filter(|s| !s.is_empty()) {
            self.run(&["ip", "addr", "add", addr, "dev", a, "nodad"]);
        }
        for addr in b_addr.split(',').filter(|s| !s.is_empty()) {
            peer.run(&["ip", "addr", "add", addr, "dev", b, "nodad"]);
        }
        self.run(&["ip", "link", "set", a, "up"]);
        peer.run(&["ip", "link", "set", b, "up"]);
    }

    /// Spawns a long-running process inside the namespace; killed when the guard drops.
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        ChildGuard::spawn(cmd)
    }

    /// Path of the namespace file, for `setns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
}

/// Runs `f` on a new (scoped) thread that has entered `ns`'s network namespace (setns is per
/// thread) and returns its result; panics propagate. `f` may borrow from the caller.
pub fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = ns.path();
    std::thread::scope(|s| {
        s.spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then delete the namespace.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct ChildGuard {
    pub child: Option<Child>,
}

impl ChildGuard {
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        ChildGuard { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal (e.g. "TERM") and waits up to `timeout` for the exit status.
    pub fn signal_and_wait(
        &mut self,
        sig: &str,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status();
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a command on the host; panics with its stderr if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `pirouterd` binary, killed on drop; its stderr is collected for assertions.
pub struct Daemon {
    pub guard: ChildGuard,
    /// `127.0.0.1:PORT` or `unix:/path`, as it logged when it started serving.
    pub addr: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pirouterd")
}

impl Daemon {
    /// Starts `pirouterd ARGS...` (e.g. `["serve", "--config", path, "--listen", "127.0.0.1:0"]`)
    /// and waits until it logs `serving http on ADDR`.
    pub fn start(args: &[&str]) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.args(args);
        Daemon::start_cmd(cmd)
    }

    /// Like [`Daemon::start`], for a prepared command (e.g. `ip netns exec NAME pirouterd ...`).
    pub fn start_cmd(mut cmd: Command) -> Daemon {
        use std::io::BufRead;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut guard = ChildGuard::spawn(cmd);
        let child = guard.child.as_mut().expect("child");
        let err = child.stderr.take().expect("stderr");
        let out = child.stdout.take().expect("stdout");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    if let Some(a) = line.split("serving http on ").nth(1) {
                        let _ = tx.send(a.trim().to_string());
                    }
                    let mut s = stderr.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        {
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let mut s = stdout.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "pirouterd did not start serving; stderr:\n{}",
                    stderr.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        Daemon {
            guard,
            addr,
            stderr,
            stdout,
        }
    }

    /// Sends a raw request text; returns (status, headers lowercased, body).
    pub fn raw(&self, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http_raw(&self.addr, request)
    }

    /// GET `path`, with an optional bearer token.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let (s, _, b) = self.request("GET", path, token, None);
        (s, b)
    }

    /// GET `path` as JSON (panics unless 200).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (s, b) = self.get(path, None);
        assert_eq!(s, 200, "GET {path}: {}", String::from_utf8_lossy(&b));
        serde_json::from_slice(&b).expect("json body")
    }

    /// Any request with an optional token and JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.raw(req.as_bytes())
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One HTTP exchange over TCP (`IP:PORT`) or a unix socket (`unix:/path`), reading until the
/// server closes (requests should say `Connection: close`).
pub fn http_raw(addr: &str, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Some(path) = addr.strip_prefix("unix:") {
        let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect unix");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(request).expect("send");
        let _ = s.read_to_end(&mut buf);
    } else {
        let mut s = std::net::TcpStream::connect(addr).expect("connect tcp");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(request).expect("send");
        let _ = s.read_to_end(&mut buf);
    }
    parse_http(&buf)
}

/// Splits a raw HTTP response; handles `Transfer-Encoding: chunked`.
pub fn parse_http(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..pos]).trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            let start = pos + 2;
            out.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
            rest = &rest[(start + size + 2).min(rest.len())..];
        }
        body = out;
    }
    (status, headers, body)
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("pr-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir temp");
        TempDir(p)
    }

    /// Writes a file inside and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `promtool check metrics` (Debian package prometheus) must accept the exposition text.
pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics to promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
