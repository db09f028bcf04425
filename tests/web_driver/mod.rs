//! A small WebDriver client for the page's browser tests: headless Chromium driven by
//! `chromedriver` (Debian packages `chromium`, `chromium-driver`) over plain HTTP + JSON.
//!
//! Why WebDriver and not the DevTools protocol: WebDriver clicks are real input events with
//! hit-testing (a button hidden under something else cannot be clicked), typing goes through
//! the keyboard path, and chromedriver still gives DevTools commands (`goog/cdp/execute`) for
//! what WebDriver lacks (phone-sized viewport, dark mode). Why hand-written and not
//! `fantoccini`: WebDriver is JSON over HTTP/1.1, which std's `TcpStream` and `serde_json`
//! (already a dev-dependency) speak; fantoccini would pull an async runtime and an HTTP stack
//! into every test build on a shared 2-core machine for the same dozen requests.
//!
//! Everything started here is ended on drop: the WebDriver session (which ends Chromium), then
//! chromedriver itself, then the throwaway profile directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{ChildGuard, TempDir};

/// The W3C key for element references in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session.
pub struct Browser {
    driver: ChildGuard,
    addr: String,
    session: String,
    _profile: TempDir,
}

/// An element reference.
#[derive(Clone, Debug)]
pub struct El(pub String);

fn chromium_binary() -> String {
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(c).exists() {
            return c.to_string();
        }
    }
    panic!("no Chromium found: install the Debian packages chromium and chromium-driver (scripts/setup.sh does)");
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a
    /// `width` x `height` window.
    pub fn start(width: u32, height: u32) -> Browser {
        let mut cmd = Command::new("chromedriver");
        cmd.arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut driver = ChildGuard::spawn(cmd);
        let out = driver
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("chromedriver stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(p) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(p.trim_end_matches('.').trim().to_string());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver did not start (Debian package chromium-driver)");
        let addr = format!("127.0.0.1:{port}");
        let profile = TempDir::new("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.0.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let (status, v) = call(&addr, "POST", "/session", Some(&caps));
        assert_eq!(
            status, 200,
            "cannot start Chromium through chromedriver: {v}"
        );
        let session = v["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        let b = Browser {
            driver,
            addr,
            session,
            _profile: profile,
        };
        b.viewport(width, height, false);
        b
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        let (status, v) = call(&self.addr, method, &full, body);
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    /// Opens `url` and waits for the load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs a DevTools command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({"cmd": cmd, "params": params})),
        )
    }

    /// Sets the page's viewport (CSS pixels); `mobile` emulates a phone (touch, device scale 2).
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        );
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub fn color_scheme(&self, dark: bool) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}]}),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// Polls `script` every 100 ms until it returns something other than null/false/""/0;
    /// panics with `what` and the page's text after `timeout`.
    pub fn wait(&self, timeout: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script, json!([]));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; page text:\n{}",
                    self.js("return document.body.innerText", json!([]))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<El> {
        let full = format!("/session/{}/element", self.session);
        let (status, v) = call(
            &self.addr,
            "POST",
            &full,
            Some(&json!({"using": "css selector", "value": css})),
        );
        (status == 200).then(|| El(v["value"][ELEMENT].as_str().unwrap_or("").to_string()))
    }

    /// Waits until an element matching `css` exists.
    pub fn wait_find(&self, css: &str, timeout: Duration) -> El {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element {css} after {timeout:?}; page text:\n{}",
                    self.js("return document.body.innerText", json!([]))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks like a user: scrolls it into view, fails if something covers it.
    pub fn click(&self, e: &El) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(&json!({})));
    }

    /// Types `text` into the element (keyboard events); `\u{E007}` is Enter.
    pub fn type_text(&self, e: &El, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(&json!({ "text": text })),
        );
    }

    /// Presses keys on whatever has focus (WebDriver actions), e.g. `"\u{E014}"` ArrowRight.
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(&json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Empties an input.
    pub fn clear(&self, e: &El) {
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(&json!({})));
    }

    /// The element's rendered text.
    pub fn text(&self, e: &El) -> String {
        self.cmd("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// An attribute's value.
    pub fn attr(&self, e: &El, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .as_str()
            .map(String::from)
    }

    /// Chooses the option with `value` in a `<select>` the way a keyboard user would: focus
    /// it and press keys until it shows, which fires `change` like a real choice.
    pub fn select(&self, css: &str, value: &str) {
        let sel = self.wait_find(css, Duration::from_secs(5));
        let idx = self.js(
            "const s=document.querySelector(arguments[0]);return Array.from(s.options).findIndex(o=>o.value===arguments[1]);",
            json!([css, value]),
        );
        let idx = idx.as_i64().unwrap_or(-1);
        assert!(idx >= 0, "{css} has no option {value:?}");
        let opt = self.wait_find(
            &format!("{css} option:nth-child({})", idx + 1),
            Duration::from_secs(1),
        );
        self.click(&sel);
        self.click(&opt);
        let got = self.js(
            "return document.querySelector(arguments[0]).value",
            json!([css]),
        );
        assert_eq!(got, json!(value), "{css} did not take {value:?}");
    }

    /// A PNG of the viewport, written to `path` (directories created).
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("base64 png"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir artifacts");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Browser log entries since the last call (console messages, uncaught exceptions,
    /// failed loads), each `{level, message, source}`.
    pub fn log(&self) -> Vec<Value> {
        // Anything but a list means the log channel is broken: a console check must not
        // pass on an empty log it never read.
        match self.cmd("POST", "/se/log", Some(&json!({"type": "browser"}))) {
            Value::Array(v) => v,
            other => panic!("chromedriver's browser log answered {other}"),
        }
    }

    /// Errors and warnings from the log since the last call.
    pub fn problems(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; the ChildGuard then kills chromedriver.
        if std::net::TcpStream::connect(&self.addr).is_ok() {
            call(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
    }
}

/// One WebDriver request; returns the status and the JSON answer. chromedriver keeps the
/// connection open whatever `Connection:` says, so the body is read by its Content-Length.
fn call(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    use std::io::{Read, Write};
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = std::net::TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(req.as_bytes()).expect("send to chromedriver");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut b = vec![0; len];
    r.read_exact(&mut b).expect("chromedriver answer body");
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Asserts the console had no errors or warnings since the last check, except the failed
/// loads listed in `expected` as `(path, status)` (changes a test provoked to be refused),
/// each of which must have been logged: that also proves the log was read.
pub fn assert_clean_console(b: &Browser, expected: &[(&str, u16)]) {
    let problems = b.problems();
    let mut unexpected = Vec::new();
    let mut seen = vec![false; expected.len()];
    for p in &problems {
        let m = p["message"].as_str().unwrap_or("");
        let failed_load = |path: &str, code: u16| {
            p["source"] == "network"
                && (m.contains(&format!("{path} ")) || m.contains(&format!("{path}?")))
                && m.contains(&format!("status of {code} "))
        };
        match expected
            .iter()
            .position(|(path, code)| failed_load(path, *code))
        {
            Some(i) => seen[i] = true,
            None => unexpected.push(p.clone()),
        }
    }
    assert!(
        unexpected.is_empty(),
        "console errors or warnings: {unexpected:#?}"
    );
    let missing: Vec<_> = expected.iter().zip(&seen).filter(|(_, s)| !**s).collect();
    assert!(
        missing.is_empty(),
        "expected refusals not in the browser log: {missing:?} (log: {problems:#?})"
    );
}

/// Where tests put screenshots: `artifacts/` at the crate root (gitignored; CI keeps it).
pub fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(name)
}

/// The demo's token, from its stdout.
pub fn demo_token(d: &crate::common::Daemon) -> String {
    let out = crate::common::wait_for(Duration::from_secs(10), || {
        let o = d.stdout();
        o.contains("token for changes").then_some(o)
    })
    .expect("the demo prints its token");
    out.lines()
        .find_map(|l| l.split("token for changes").nth(1))
        .and_then(|rest| rest.rsplit(' ').next())
        .expect("token on the line")
        .trim()
        .to_string()
}
