//! `/api/v1/wan` routes. Handlers read the published status; a change is one command to the
//! WAN thread, answered when it has been applied.

use serde::Deserialize;

use crate::app::App;
use crate::http::{ApiRequest, ApiResponse, Method};

use super::controller::RaMode;
use super::service::Command;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoLinkBody {
    up: bool,
    #[serde(rename = "for")]
    down_for: Option<String>,
}

/// The area's router (`http::route::AREA_ROUTES`).
pub fn route(app: &App, req: &ApiRequest) -> Option<ApiResponse> {
    match req.path.as_str() {
        "/api/v1/wan" => Some(match req.method {
            Method::Get | Method::Head => ApiResponse::json(200, &*app.wan.status.get()),
            _ => ApiResponse::method_not_allowed(&req.method, &["GET", "HEAD"]),
        }),
        "/api/v1/wan/ra-block" => Some(match req.method {
            Method::Post => set_mode(app, req),
            _ => ApiResponse::method_not_allowed(&req.method, &["POST"]),
        }),
        "/api/v1/wan/demo/link" => Some(match req.method {
            Method::Post => demo_link(app, req),
            _ => ApiResponse::method_not_allowed(&req.method, &["POST"]),
        }),
        _ => None,
    }
}

fn set_mode(app: &App, req: &ApiRequest) -> ApiResponse {
    let body: ModeBody = match req.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(mode) = RaMode::parse(&body.mode) else {
        return ApiResponse::error(
            400,
            "bad_mode",
            format!("mode {:?}: use \"auto\", \"on\" or \"off\"", body.mode),
        );
    };
    let source = format!("api {}", req.client);
    match app.wan.command(|reply| Command::SetMode {
        mode,
        source,
        reply,
    }) {
        Ok(()) => ApiResponse::json(200, &*app.wan.status.get()),
        Err(e) if !app.wan.status.get().enabled => ApiResponse::error(409, "wan_off", e),
        Err(e) => ApiResponse::error(503, "ra_block_failed", e),
    }
}

fn demo_link(app: &App, req: &ApiRequest) -> ApiResponse {
    if !app.demo || app.wan.demo_peer().is_none() {
        return ApiResponse::error(
            404,
            "not_found",
            "/api/v1/wan/demo/link exists only in `pirouterd demo` (it flaps the simulated WAN)",
        );
    }
    let body: DemoLinkBody = match req.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let down_for = match body.down_for.as_deref().map(crate::duration::parse) {
        None => None,
        Some(Ok(d)) if !body.up && d <= std::time::Duration::from_secs(3600) => Some(d),
        Some(Ok(_)) => {
            return ApiResponse::error(
                400,
                "bad_for",
                "\"for\" goes with \"up\": false and is at most 1h",
            )
        }
        Some(Err(e)) => return ApiResponse::error(400, "bad_for", e.to_string()),
    };
    let source = format!("api {}", req.client);
    match app.wan.command(|reply| Command::DemoLink {
        up: body.up,
        down_for,
        source,
        reply,
    }) {
        Ok(()) => ApiResponse::json(200, &*app.wan.status.get()),
        Err(e) => ApiResponse::error(503, "demo_link_failed", e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sys::clock::SystemClock;
    use std::sync::Arc;

    fn app() -> App {
        App::new(
            Config::default(),
            Arc::new(SystemClock),
            Some("t".into()),
            false,
        )
    }

    #[test]
    fn paths_and_methods() {
        let a = app();
        assert!(route(&a, &ApiRequest::new(Method::Get, "/api/v1/wanx")).is_none());
        let r = route(&a, &ApiRequest::new(Method::Get, "/api/v1/wan")).unwrap();
        assert_eq!(r.status, 200);
        let r = route(&a, &ApiRequest::new(Method::Get, "/api/v1/wan/ra-block")).unwrap();
        assert_eq!(r.status, 405);
    }

    #[test]
    fn bad_bodies_are_400_and_no_wan_is_409() {
        let a = app();
        let post = |b: &str| {
            route(
                &a,
                &ApiRequest::new(Method::Post, "/api/v1/wan/ra-block").with_body(b.as_bytes()),
            )
            .unwrap()
        };
        let r = post(r#"{"mode":"maybe"}"#);
        assert_eq!(r.status, 400);
        assert_eq!(r.body_json()["error"]["code"], "bad_mode");
        assert_eq!(post(r#"{"mode":1}"#).status, 400);
        assert_eq!(post(r#"{"mode":"on","x":1}"#).status, 400);
        assert_eq!(post("not json").status, 400);
        let r = post(r#"{"mode":"on"}"#);
        assert_eq!(r.status, 409, "{:?}", r.body_json());
        assert!(r.body_json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wan.interface"));
    }

    #[test]
    fn demo_link_is_demo_only() {
        let a = app();
        let r = route(
            &a,
            &ApiRequest::new(Method::Post, "/api/v1/wan/demo/link").with_body(br#"{"up":false}"#),
        )
        .unwrap();
        assert_eq!(r.status, 404);
    }
}
