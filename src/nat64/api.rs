//! `GET /api/v1/nat64` and `GET /api/v1/nat64/sessions`, answered from the last published
//! snapshot: a request never runs `jool`.

use super::session::Proto;
use super::snapshot::{InstanceSnapshot, Nat64Snapshot, SessionFilter};
use crate::app::App;
use crate::http::{ApiRequest, ApiResponse, Method};
use serde_json::{json, Value};

/// Most sessions one page may hold.
pub const MAX_LIMIT: usize = 10_000;

/// The area's router (see `http::route::AREA_ROUTES`).
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    let path = req.path.as_str();
    if path != "/api/v1/nat64" && path != "/api/v1/nat64/sessions" {
        return None;
    }
    if !matches!(req.method, Method::Get | Method::Head) {
        return Some(ApiResponse::method_not_allowed(
            &req.method,
            &["GET", "HEAD"],
        ));
    }
    let snap = app.nat64.get();
    Some(if path == "/api/v1/nat64" {
        ApiResponse::json(
            200,
            &overview(app.config.nat64.enabled, snap.as_ref().as_ref()),
        )
    } else {
        sessions(app.config.nat64.enabled, snap.as_ref().as_ref(), req)
    })
}

/// The body of `GET /api/v1/nat64`.
pub fn overview(enabled: bool, snap: Option<&Nat64Snapshot>) -> Value {
    let Some(s) = snap else {
        return json!({
            "enabled": enabled,
            "sampled": false,
            "up": false,
            "taken_at": null,
            "sample_data": false,
            "problems": [],
            "instances": [],
        });
    };
    json!({
        "enabled": enabled,
        "sampled": true,
        "up": s.up(),
        "taken_at": s.taken_at_ms,
        "sample_data": s.sample_data,
        "reason": s.reason(),
        "problems": s.problems,
        "instances": s.instances.iter().map(instance).collect::<Vec<_>>(),
    })
}

fn instance(i: &InstanceSnapshot) -> Value {
    let stats: Vec<Value> = i
        .stats
        .iter()
        .map(|s| {
            let mut v = json!({"name": s.name, "value": s.value, "kind": s.kind()});
            if let Some(e) = &s.explanation {
                v["explanation"] = json!(e);
            }
            v
        })
        .collect();
    json!({
        "name": i.name,
        "namespace": i.namespace,
        "framework": i.framework,
        "status": i.status.label(),
        "status_detail": match &i.status {
            super::InstanceStatus::Dead(d) => json!(d),
            _ => Value::Null,
        },
        "up": i.up(),
        "sessions_read": i.sessions_read,
        "stats_read": i.stats_read,
        // total, by_proto (sessions and BIB entries), by_state, top_clients, pool4 usage.
        "summary": i.summary,
        "pool4": i.pool4,
        "stats": stats,
        "problems": i.problems,
    })
}

/// The body of `GET /api/v1/nat64/sessions`: `?proto=tcp|udp|icmp`, `?client=ADDR[/LEN]`,
/// `?instance=NAME`, `?limit=` (default 100, at most 10000), `?offset=`.
fn sessions(enabled: bool, snap: Option<&Nat64Snapshot>, req: &ApiRequest) -> ApiResponse {
    let mut filter = SessionFilter::default();
    if let Some(p) = req.query("proto") {
        match Proto::parse(&p.to_ascii_lowercase()) {
            Some(p) => filter.proto = Some(p),
            None => {
                return ApiResponse::error(
                    400,
                    "bad_query",
                    format!("proto={p:?}: use tcp, udp or icmp"),
                )
            }
        }
    }
    if let Some(c) = req.query("client") {
        match SessionFilter::parse_client(c) {
            Some(c) => filter.client = Some(c),
            None => {
                return ApiResponse::error(
                    400,
                    "bad_query",
                    format!("client={c:?}: use an IPv6 address or prefix, e.g. 2001:db8::1 or 2001:db8::/64"),
                )
            }
        }
    }
    filter.instance = req.query("instance").map(String::from);
    filter.limit = match req.query_usize("limit", 100, MAX_LIMIT) {
        Ok(n) => n,
        Err(r) => return r,
    };
    filter.offset = match req.query_usize("offset", 0, usize::MAX) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(s) = snap else {
        return ApiResponse::json(
            200,
            &json!({
                "enabled": enabled,
                "sampled": false,
                "taken_at": null,
                "sample_data": false,
                "total": 0,
                "offset": filter.offset,
                "limit": filter.limit,
                "sessions": [],
            }),
        );
    };
    let page = s.sessions(&filter);
    ApiResponse::json(
        200,
        &json!({
            "enabled": enabled,
            "sampled": true,
            "taken_at": s.taken_at_ms,
            "sample_data": s.sample_data,
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
            "sessions": page.sessions,
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sys::clock::SystemClock;
    use std::sync::Arc;

    #[test]
    fn before_the_first_round_and_other_paths() {
        let app = App::new(Config::default(), Arc::new(SystemClock), None, false);
        let get = |t: &str| route(&app, &ApiRequest::new(Method::Get, t));
        assert!(get("/api/v1/nat64x").is_none());
        assert!(get("/api/v1/firewall").is_none());
        let r = get("/api/v1/nat64").unwrap();
        assert_eq!(r.status, 200);
        let v = r.body_json();
        assert_eq!(
            (v["sampled"].as_bool(), v["up"].as_bool()),
            (Some(false), Some(false))
        );
        let r = get("/api/v1/nat64/sessions?proto=udp").unwrap();
        assert_eq!(r.body_json()["total"], 0);
        let r = route(
            &app,
            &ApiRequest::new(Method::Post, "/api/v1/nat64/sessions"),
        )
        .unwrap();
        assert_eq!(r.status, 405);
    }
}
