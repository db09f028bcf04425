//! `pirouterd status`: a terminal summary from a running daemon's `/api/v1/status`, fetched
//! over TCP or a unix socket with a minimal HTTP/1.0 client (no dependency for 40 lines).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::config::ListenAddr;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Connecting failed: the daemon is not running or listens elsewhere.
    #[error("cannot reach pirouterd at {addr}: is it running (systemctl status pirouterd)? Is http.listen right?")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The answer was not a readable HTTP response.
    #[error("pirouterd at {addr} answered something unreadable: {message}")]
    Answer { addr: String, message: String },
}

/// GETs `path` from the daemon at `addr`, returning status and body.
pub fn get(
    addr: &ListenAddr,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, Vec<u8>), StatusError> {
    let name = addr.to_string();
    let cerr = |source| StatusError::Connect {
        addr: name.clone(),
        source,
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n");
    let mut buf = Vec::new();
    match addr {
        ListenAddr::Tcp(a) => {
            let mut s = TcpStream::connect_timeout(a, Duration::from_secs(3)).map_err(cerr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(cerr)?;
            s.write_all(req.as_bytes()).map_err(cerr)?;
            s.read_to_end(&mut buf).map_err(cerr)?;
        }
        ListenAddr::Unix(p) => {
            let mut s = UnixStream::connect(p).map_err(cerr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(cerr)?;
            s.write_all(req.as_bytes()).map_err(cerr)?;
            s.read_to_end(&mut buf).map_err(cerr)?;
        }
    }
    parse_response(&buf).map_err(|message| StatusError::Answer {
        addr: name,
        message,
    })
}

/// Splits a raw HTTP response into status and body.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not text")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status code")?;
    Ok((status, raw[end + 4..].to_vec()))
}

/// Renders `/api/v1/status` JSON as a terminal summary.
pub fn render(status: &serde_json::Value) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "pirouterd {}{}, up {} s\n\n",
        status["version"].as_str().unwrap_or("?"),
        if status["demo"].as_bool() == Some(true) {
            " (demo)"
        } else {
            ""
        },
        status["uptime_s"].as_u64().unwrap_or(0)
    ));
    out.push_str(&format!(
        "{:<12} {:<10} {}\n",
        "COMPONENT", "STATE", "DETAIL"
    ));
    if let Some(map) = status["components"].as_object() {
        for (name, c) in map {
            let state = c["state"].as_str().unwrap_or("?");
            let detail = match (state, c["last_error"].as_str()) {
                ("up", _) | (_, None) => summary(&c["detail"]),
                (_, Some(e)) => e.to_string(),
            };
            out.push_str(&format!("{name:<12} {state:<10} {detail}\n"));
        }
    }
    out
}

fn summary(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n{\"x\":1}").expect("ok");
        assert_eq!(s, 200);
        assert_eq!(b, b"{\"x\":1}");
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn renders_components() {
        let v = serde_json::json!({"version": "0.1.0", "demo": true, "uptime_s": 5, "components": {
            "jool": {"state": "degraded", "last_error": "jool is not installed", "detail": null},
            "nftables": {"state": "up", "last_error": null, "detail": {"tables": 2, "rules": 30}}}});
        let s = render(&v);
        assert!(s.contains("pirouterd 0.1.0 (demo)"));
        assert!(s.contains("jool         degraded   jool is not installed"));
        assert!(s.contains("nftables     up         rules=30 tables=2"));
    }
}
