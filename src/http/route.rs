//! The router: a pure function from a request to a response.
//!
//! Order: authentication (every changing request needs the bearer token; reads too when
//! `http.read_requires_token`), then the daemon's own routes, then each area's routes
//! ([`AREA_ROUTES`]), then 404.

use std::sync::{Arc, OnceLock};

use serde_json::json;

use super::metrics::{render_core, MetricsWriter};
use super::{ApiRequest, ApiResponse, Method};
use crate::app::{App, Health};

/// An area's router: `Some(response)` when the path is one of its own, else `None`.
pub type AreaRoute = fn(&App, &ApiRequest) -> Option<ApiResponse>;

/// An area's metrics renderer.
pub type AreaMetrics = fn(&App, &mut MetricsWriter);

/// Each area's routes, tried in order after the daemon's own.
pub const AREA_ROUTES: &[AreaRoute] = &[
    // One area per line, so areas merge without conflicts.
    crate::firewall::api::route,
    crate::firewall::insight_area::route,
    crate::relays::area::route,
    crate::wan::api::route,
    crate::nat64::api::route,
    crate::drops::live::route,
];

/// Each area's metric families, rendered after the daemon's own.
pub const AREA_METRICS: &[AreaMetrics] = &[
    // One area per line, so areas merge without conflicts.
    crate::firewall::insight_area::metrics,
    crate::relays::area::metrics,
    crate::wan::metrics::render,
    crate::nat64::metrics::render,
    crate::drops::live::metrics,
];

/// The web page's files, embedded at build time; `/` first.
const PAGE: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
];

/// Answers one request.
pub fn route(app: &App, req: &ApiRequest) -> ApiResponse {
    if let Some(refusal) = check_auth(app, req) {
        return refusal;
    }
    let get_only = |f: &dyn Fn() -> ApiResponse| match req.method {
        Method::Get | Method::Head => f(),
        _ => ApiResponse::method_not_allowed(&req.method, &["GET", "HEAD"]),
    };
    if let Some(idx) = PAGE.iter().position(|(p, _, _)| *p == req.path) {
        return get_only(&|| static_file(req, idx));
    }
    match req.path.as_str() {
        "/healthz" => return get_only(&|| healthz(app)),
        "/metrics" => return get_only(&|| metrics(app)),
        "/api/v1/status" => return get_only(&|| status(app)),
        "/api/v1/events" => return get_only(&|| events(app, req)),
        _ => {}
    }
    for area in AREA_ROUTES {
        if let Some(r) = area(app, req) {
            return r;
        }
    }
    ApiResponse::error(404, "not_found", format!("no such path: {}", req.path))
}

/// `None` when the request may proceed, else the refusal.
fn check_auth(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    let open_read = req.path == "/healthz" || PAGE.iter().any(|(p, _, _)| *p == req.path);
    let needs_token = req.method.is_change() || (app.config.http.read_requires_token && !open_read);
    if !needs_token {
        return None;
    }
    let Some(token) = &app.token else {
        return Some(ApiResponse::error(
            403,
            "no_token_configured",
            "changes are refused because no token is configured: write a random token to a file \
             (`head -c 32 /dev/urandom | base64 > /etc/pirouterd/token; chmod 600 /etc/pirouterd/token`), \
             set http.token_file to it and restart pirouterd",
        ));
    };
    let given = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => None,
        Some(_) => Some(unauthorized("the bearer token is wrong")),
        None => Some(unauthorized(
            "this request needs `Authorization: Bearer <token>`",
        )),
    }
}

fn unauthorized(msg: &str) -> ApiResponse {
    ApiResponse::error(401, "unauthorized", msg)
        .with_header("WWW-Authenticate", "Bearer realm=\"pirouterd\"")
}

/// Compares without an early exit, so the time taken does not reveal how much of a guessed
/// token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// One embedded file, prepared once: its bytes, their gzip form, and the validator.
struct Asset {
    ctype: &'static str,
    body: Arc<[u8]>,
    /// `None` when gzip would not be smaller.
    gzip: Option<Arc<[u8]>>,
    /// FNV-1a of `body`, hex; the ETag and the `?v=` version of the URL.
    hash: String,
}

/// The page's files, prepared at first use. The HTML is rewritten to load `app.js` and
/// `style.css` as `?v=<hash>`: those versioned URLs may be cached for a year (a new binary
/// means new hashes, so new URLs), and a repeat visit costs one revalidation of the HTML.
/// Compressing here rather than in a build script keeps the build free of generated files;
/// it costs 1.3 ms once on the development machine (BENCHMARKS.md, Web page), a few times that
/// on a Pi.
fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let hash = |b: &[u8]| format!("{:016x}", crate::firewall::identity::fnv1a64(b));
        let mut html = String::new();
        let mut out: Vec<Asset> = PAGE
            .iter()
            .map(|(path, ctype, body)| {
                if *path == "/" {
                    html = (*body).to_string();
                }
                Asset {
                    ctype,
                    body: Arc::from(body.as_bytes()),
                    gzip: None,
                    hash: hash(body.as_bytes()),
                }
            })
            .collect();
        for ((path, _, _), a) in PAGE.iter().zip(&out) {
            if *path != "/" {
                html = html.replace(&format!("\"{path}\""), &format!("\"{path}?v={}\"", a.hash));
            }
        }
        for ((path, _, _), a) in PAGE.iter().zip(out.iter_mut()) {
            if *path == "/" {
                a.body = Arc::from(html.as_bytes());
                a.hash = hash(&a.body);
            }
            let gz = gzip(&a.body);
            a.gzip = (gz.len() < a.body.len()).then(|| Arc::from(gz));
        }
        out
    })
}

/// Serves one of the page's files: gzip when the client takes it, ETag revalidation, and a
/// year of caching for versioned URLs.
fn static_file(req: &ApiRequest, idx: usize) -> ApiResponse {
    let Some(a) = assets().get(idx) else {
        return ApiResponse::error(404, "not_found", format!("no such path: {}", req.path));
    };
    let gz = a.gzip.as_ref().filter(|_| accepts_gzip(req));
    // Each encoding is a different representation, so each gets its own strong ETag.
    let etag = match gz {
        Some(_) => format!("\"{}-gz\"", a.hash),
        None => format!("\"{}\"", a.hash),
    };
    let cache = if idx > 0 && req.query("v") == Some(a.hash.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = req.header("if-none-match").is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    });
    // Shared bodies: an answer costs a reference count, not a copy of the file.
    let (status, body) = match (matches, gz) {
        (true, _) => (304, Arc::from(&[][..])),
        (false, Some(g)) => (200, g.clone()),
        (false, None) => (200, a.body.clone()),
    };
    let mut r = ApiResponse::shared(status, a.ctype, body)
        .with_header("ETag", etag)
        .with_header("Cache-Control", cache)
        .with_header("Vary", "Accept-Encoding");
    if gz.is_some() && status == 200 {
        r = r.with_header("Content-Encoding", "gzip");
    }
    r
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero quality.
fn accepts_gzip(req: &ApiRequest) -> bool {
    let Some(h) = req.header("accept-encoding") else {
        return false;
    };
    h.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

/// A gzip member (RFC 1952) around miniz_oxide's raw deflate at its best level.
fn gzip(data: &[u8]) -> Vec<u8> {
    // ID1 ID2, CM=deflate, no flags, no mtime, XFL=2 (best compression), OS=3 (Unix).
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 10));
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE, reflected), bit by bit: it runs once per file at first use, so a table
/// would only add size.
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |mut c, b| {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
        }
        c
    })
}

fn healthz(app: &App) -> ApiResponse {
    let degraded: serde_json::Map<String, serde_json::Value> = app
        .components
        .snapshot()
        .into_iter()
        .filter(|(_, s)| s.state == Health::Degraded)
        .map(|(k, s)| (k, json!(s.last_error)))
        .collect();
    ApiResponse::json(200, &json!({"status": "serving", "degraded": degraded}))
}

const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Concurrent scrapes share one rendering: a body rendered less than a second ago that some
/// answer still holds is reused. Nothing is retained once every answer is written (the cache
/// holds only a `Weak`), so sequential clients always get a fresh rendering and memory stays
/// at one body during a scrape storm (50 clients on 10k rules: 2-4 MB instead of 50 copies).
fn metrics(app: &App) -> ApiResponse {
    let mut cache = crate::app::lock(&app.metrics_cache);
    let now = app.clock.monotonic();
    if let Some((at, weak)) = cache.as_ref() {
        if now.duration_since(*at) < std::time::Duration::from_secs(1) {
            if let Some(body) = weak.upgrade() {
                return ApiResponse::shared(200, METRICS_TYPE, body);
            }
        }
    }
    let mut w = MetricsWriter::new();
    render_core(app, &mut w);
    for area in AREA_METRICS {
        area(app, &mut w);
    }
    let body: std::sync::Arc<[u8]> = w.finish().into_bytes().into();
    *cache = Some((now, std::sync::Arc::downgrade(&body)));
    ApiResponse::shared(200, METRICS_TYPE, body)
}

fn status(app: &App) -> ApiResponse {
    let now = app.now_ms();
    ApiResponse::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "started": app.started_ms,
            "uptime_s": now.saturating_sub(app.started_ms) / 1000,
            "demo": app.demo,
            "components": app.components.snapshot(),
        }),
    )
}

fn events(app: &App, req: &ApiRequest) -> ApiResponse {
    let since = match req.query("since").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return ApiResponse::error(400, "bad_query", "?since= must be an event id"),
    };
    match req.query_usize("limit", 200, 1000) {
        Ok(limit) => ApiResponse::json(200, &json!({"events": app.events.since(since, limit)})),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sys::clock::SystemClock;
    use std::sync::Arc;

    fn app(token: Option<&str>) -> App {
        App::new(
            Config::default(),
            Arc::new(SystemClock),
            token.map(String::from),
            false,
        )
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let a = app(Some("t"));
        let r = route(&a, &ApiRequest::new(Method::Get, "/nope"));
        assert_eq!(r.status, 404);
        assert_eq!(r.body_json()["error"]["code"], "not_found");
        let r = route(
            &a,
            &ApiRequest::new(Method::Post, "/healthz").with_header("authorization", "Bearer t"),
        );
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "GET, HEAD".into())));
    }

    #[test]
    fn changes_need_the_token() {
        let a = app(Some("s3cret"));
        let post = || ApiRequest::new(Method::Post, "/api/v1/relays/x");
        assert_eq!(route(&a, &post()).status, 401);
        assert_eq!(
            route(&a, &post().with_header("authorization", "Bearer wrong")).status,
            401
        );
        // Past auth, the relays area answers (not started in this test: 503), not 401.
        assert_eq!(
            route(&a, &post().with_header("authorization", "Bearer s3cret")).status,
            503
        );
        let none = app(None);
        let r = route(&none, &post().with_header("authorization", "Bearer s3cret"));
        assert_eq!(r.status, 403);
        assert!(r.body_json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("token_file"));
    }

    #[test]
    fn reads_can_require_the_token_but_page_and_healthz_stay_open() {
        let mut c = Config::default();
        c.http.read_requires_token = true;
        let a = App::new(c, Arc::new(SystemClock), Some("t".into()), false);
        assert_eq!(
            route(&a, &ApiRequest::new(Method::Get, "/api/v1/status")).status,
            401
        );
        assert_eq!(
            route(&a, &ApiRequest::new(Method::Get, "/metrics")).status,
            401
        );
        assert_eq!(
            route(&a, &ApiRequest::new(Method::Get, "/healthz")).status,
            200
        );
        assert_eq!(route(&a, &ApiRequest::new(Method::Get, "/")).status, 200);
        let ok =
            ApiRequest::new(Method::Get, "/api/v1/status").with_header("authorization", "Bearer t");
        assert_eq!(route(&a, &ok).status, 200);
    }

    #[test]
    fn page_has_etag_and_revalidates() {
        let a = app(None);
        let r = route(&a, &ApiRequest::new(Method::Get, "/"));
        assert_eq!(r.status, 200);
        let etag = r
            .headers
            .iter()
            .find(|(k, _)| *k == "ETag")
            .map(|(_, v)| v.clone())
            .expect("etag");
        let r2 = route(
            &a,
            &ApiRequest::new(Method::Get, "/").with_header("if-none-match", &etag),
        );
        assert_eq!(r2.status, 304);
        assert!(r2.body.is_empty());
    }

    fn header<'a>(r: &'a ApiResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn page_stays_within_its_60_kib_budget() {
        let total: usize = PAGE.iter().map(|(_, _, b)| b.len()).sum();
        assert!(
            total < 60 * 1024,
            "web/ is {total} bytes; the budget is 60 KiB"
        );
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn page_files_are_gzipped_only_when_accepted() {
        let a = app(None);
        for (path, _, raw) in PAGE {
            let plain = route(&a, &ApiRequest::new(Method::Get, path));
            assert_eq!(header(&plain, "Content-Encoding"), None, "{path}");
            assert_eq!(header(&plain, "Vary"), Some("Accept-Encoding"));
            let gz = route(
                &a,
                &ApiRequest::new(Method::Get, path)
                    .with_header("accept-encoding", "gzip, deflate, br"),
            );
            assert_eq!(gz.status, 200);
            assert_eq!(header(&gz, "Content-Encoding"), Some("gzip"), "{path}");
            assert!(
                gz.body.len() * 2 < plain.body.len(),
                "{path} compresses well"
            );
            assert_eq!(&gz.body[..3], &[0x1f, 0x8b, 8]);
            let n = gz.body.len();
            let inflated =
                miniz_oxide::inflate::decompress_to_vec(&gz.body[10..n - 8]).expect("inflate");
            assert_eq!(inflated[..], plain.body[..], "{path}");
            assert_eq!(gz.body[n - 8..n - 4], crc32(&inflated).to_le_bytes());
            assert_eq!(gz.body[n - 4..], (inflated.len() as u32).to_le_bytes());
            assert_ne!(header(&gz, "ETag"), header(&plain, "ETag"));
            if *path != "/" {
                assert_eq!(
                    &plain.body[..],
                    raw.as_bytes(),
                    "{path} is served as written"
                );
            }
        }
        for refused in ["gzip;q=0", "identity", "br", "gzip; q=0.0, br"] {
            let r = route(
                &a,
                &ApiRequest::new(Method::Get, "/app.js").with_header("accept-encoding", refused),
            );
            assert_eq!(header(&r, "Content-Encoding"), None, "{refused}");
        }
        let star = route(
            &a,
            &ApiRequest::new(Method::Get, "/app.js").with_header("accept-encoding", "*"),
        );
        assert_eq!(header(&star, "Content-Encoding"), Some("gzip"));
    }

    #[test]
    fn html_loads_versioned_assets_that_cache_for_a_year() {
        let a = app(None);
        let html = route(&a, &ApiRequest::new(Method::Get, "/"));
        assert_eq!(header(&html, "Cache-Control"), Some("no-cache"));
        let text = String::from_utf8(html.body.to_vec()).expect("utf8");
        for path in ["/app.js", "/style.css"] {
            let start = text
                .find(&format!("\"{path}?v="))
                .unwrap_or_else(|| panic!("{path} versioned in the HTML"));
            let v = &text[start + path.len() + 4..];
            let v = &v[..v.find('"').expect("closing quote")];
            let r = route(&a, &ApiRequest::new(Method::Get, &format!("{path}?v={v}")));
            assert_eq!(r.status, 200);
            assert_eq!(
                header(&r, "Cache-Control"),
                Some("public, max-age=31536000, immutable")
            );
            assert_eq!(header(&r, "ETag"), Some(format!("\"{v}\"").as_str()));
            // An old version's URL is still answered, but must be revalidated.
            let old = route(&a, &ApiRequest::new(Method::Get, &format!("{path}?v=0")));
            assert_eq!(header(&old, "Cache-Control"), Some("no-cache"));
        }
    }

    #[test]
    fn gzip_etag_revalidates_too() {
        let a = app(None);
        let req =
            || ApiRequest::new(Method::Get, "/style.css").with_header("accept-encoding", "gzip");
        let r = route(&a, &req());
        let etag = header(&r, "ETag").expect("etag").to_string();
        assert!(etag.ends_with("-gz\""));
        let r2 = route(
            &a,
            &req().with_header("if-none-match", &format!("W/\"x\", {etag}")),
        );
        assert_eq!(r2.status, 304);
        assert!(r2.body.is_empty());
        assert_eq!(header(&r2, "Content-Encoding"), None);
        // The identity representation's validator does not match the gzip one.
        let plain = route(&a, &ApiRequest::new(Method::Get, "/style.css"));
        let r3 = route(
            &a,
            &req().with_header("if-none-match", header(&plain, "ETag").expect("etag")),
        );
        assert_eq!(r3.status, 200);
    }

    #[test]
    fn metrics_have_core_families() {
        let a = app(None);
        a.components.register("nftables", true, 0);
        let r = route(&a, &ApiRequest::new(Method::Get, "/metrics"));
        let text = String::from_utf8(r.body.to_vec()).expect("utf8");
        assert!(text.contains("pirouterd_build_info{version=\""));
        assert!(text.contains("pirouterd_component_up{component=\"nftables\"} 0"));
    }

    #[test]
    fn constant_time_eq_is_correct() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
