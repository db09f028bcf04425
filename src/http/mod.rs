//! HTTP: a small HTTP/1.1 server ([`server`]) around a pure [`route`] function, JSON bodies, and
//! Prometheus text rendering ([`metrics`]).
//!
//! `route()` takes an [`ApiRequest`] (already read, limits already checked) and returns an
//! [`ApiResponse`]; it never touches a socket, so every API behaviour is unit-testable.

pub mod metrics;
pub mod route;
pub mod server;

use std::sync::Arc;

use serde::Serialize;

/// HTTP methods the API knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD (answered as GET without a body)
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Anything else, kept for the 405 answer.
    Other(String),
}

impl Method {
    /// Whether the method may change state (and so needs the token).
    pub fn is_change(&self) -> bool {
        !matches!(self, Method::Get | Method::Head)
    }

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Other(s) => s,
        }
    }
}

/// A request as the router sees it: fully read, within limits.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The path, without the query string, still percent-encoded.
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client: `IP:port`, or `unix` for a unix-socket client.
    pub client: String,
}

impl ApiRequest {
    /// A request with no headers or body (tests, internal use).
    pub fn new(method: Method, target: &str) -> ApiRequest {
        let (path, query) = split_target(target);
        ApiRequest {
            method,
            path,
            query,
            headers: Vec::new(),
            body: Vec::new(),
            client: "test".into(),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> ApiRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: &[u8]) -> ApiRequest {
        self.body = body.to_vec();
        self
    }

    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments after `prefix`, percent-decoded; `None` if the path does not start
    /// with `prefix` or a segment does not decode.
    pub fn segments_after(&self, prefix: &str) -> Option<Vec<String>> {
        let rest = self.path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }

    /// The body parsed as JSON, or a 400 naming the problem.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiResponse> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiResponse::error(
                400,
                "bad_json",
                format!("request body is not the expected JSON: {e}"),
            )
        })
    }

    /// A query parameter parsed as a number, or a 400.
    pub fn query_usize(&self, key: &str, default: usize, max: usize) -> Result<usize, ApiResponse> {
        match self.query(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiResponse::error(
                    400,
                    "bad_query",
                    format!("?{key}= must be a whole number from 0 to {max}, got {v:?}"),
                )),
            },
        }
    }
}

/// A response from the router.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body. Shared, so one rendering (e.g. `/metrics`) can be written to many clients at
    /// once without a copy each.
    pub body: Arc<[u8]>,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> ApiResponse {
        match serde_json::to_vec(value) {
            Ok(body) => ApiResponse {
                status,
                content_type: "application/json",
                headers: Vec::new(),
                body: body.into(),
            },
            Err(e) => {
                ApiResponse::error(500, "serialize", format!("cannot encode the answer: {e}"))
            }
        }
    }

    /// `{"error": {"code": ..., "message": ...}}` with `status`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> ApiResponse {
        let v = serde_json::json!({"error": {"code": code, "message": message.into()}});
        ApiResponse {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: v.to_string().into_bytes().into(),
        }
    }

    /// A 405 naming the allowed methods.
    pub fn method_not_allowed(method: &Method, allowed: &[&str]) -> ApiResponse {
        let mut r = ApiResponse::error(
            405,
            "method_not_allowed",
            format!(
                "{} is not allowed here; use {}",
                method.as_str(),
                allowed.join(" or ")
            ),
        );
        r.headers.push(("Allow", allowed.join(", ")));
        r
    }

    /// Plain bytes with a content type.
    pub fn bytes(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> ApiResponse {
        ApiResponse::shared(status, content_type, body.into().into())
    }

    /// A body shared with other answers (no copy).
    pub fn shared(status: u16, content_type: &'static str, body: Arc<[u8]>) -> ApiResponse {
        ApiResponse {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ApiResponse {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as JSON (tests).
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Splits `/a/b?x=1&y` into the path and decoded query pairs.
pub fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, q) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let query = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec =
                |s: &str| percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_string());
            (dec(k), dec(v))
        })
        .collect();
    (path.to_string(), query)
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_and_decode() {
        let (p, q) = split_target("/api/v1/x?limit=5&sort=hot&q=a%20b+c&flag");
        assert_eq!(p, "/api/v1/x");
        assert_eq!(q[0], ("limit".into(), "5".into()));
        assert_eq!(q[2], ("q".into(), "a b c".into()));
        assert_eq!(q[3], ("flag".into(), "".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a%2Fb"), Some("a/b".into()));
    }

    #[test]
    fn segments_after_prefix() {
        let r = ApiRequest::new(Method::Get, "/api/v1/relays/fire%2Dplace");
        assert_eq!(
            r.segments_after("/api/v1/relays"),
            Some(vec!["fire-place".to_string()])
        );
        assert_eq!(r.segments_after("/api/v1/relay"), None);
    }
}
