//! The NAT64 view in a real browser against `pirouterd demo` (recorded Jool output, labelled
//! as sample data): instance status, sessions by protocol and state, top clients, the session
//! table with its protocol and client filters, and Jool's counters.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::time::Duration;

use common::Daemon;
use serde_json::json;
use web_driver::{artifact, assert_clean_console, Browser};

const T: Duration = Duration::from_secs(30);

fn session_rows(b: &Browser) -> Vec<String> {
    let v = b.js("return Array.from(document.querySelectorAll('#n64-sessions tbody tr')).map(t=>t.innerText)", json!([]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nat64_view_shows_status_sessions_filters_and_counters() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let b = Browser::start(1280, 1000);
    b.goto(&format!("http://{}/#nat64", d.addr));
    let api = d.get_json("/api/v1/nat64");
    let inst = &api["instances"][0];
    let name = inst["name"].as_str().unwrap();
    b.wait(T, "the instance", &format!(
        "const a=document.querySelector('#n64-instances article[data-key=\"{name}\"]');return a&&a.innerText.includes('running')"));
    let total = inst["summary"]["total"].as_u64().unwrap() as usize;
    assert!(total > 0);
    b.wait(
        T,
        "every session (one page)",
        &format!(
            "return document.querySelectorAll('#n64-sessions tbody tr').length === {}",
            total.min(50)
        ),
    );
    assert!(b
        .js(
            "return document.querySelector('#nat64').innerText",
            json!([])
        )
        .as_str()
        .unwrap()
        .contains("sample data"));

    b.select("#n64-proto", "udp");
    let udp = d.get_json("/api/v1/nat64/sessions?proto=udp")["total"]
        .as_u64()
        .unwrap() as usize;
    b.wait(T, "only UDP sessions", &format!(
        "const r=Array.from(document.querySelectorAll('#n64-sessions tbody tr'));return r.length==={udp}&&r.every(t=>t.children[0].innerText==='udp')"));

    // A client filter: the busiest client's sessions only; half-typed input is not sent.
    b.select("#n64-proto", "");
    let client = inst["summary"]["top_clients"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    let want = inst["summary"]["top_clients"][0]["sessions"]
        .as_u64()
        .unwrap() as usize;
    let input = b.wait_find("#n64-client", T);
    b.type_text(&input, &client);
    b.wait(T, "the client's sessions", &format!(
        "const r=Array.from(document.querySelectorAll('#n64-sessions tbody tr'));return r.length==={want}&&r.every(t=>t.children[1].innerText.startsWith('[{client}]'))"));
    b.clear(&input);
    b.type_text(&input, "2001:db8:");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        b.js(
            "return document.querySelector('#n64-client').getAttribute('aria-invalid')",
            json!([])
        ),
        json!("true")
    );
    assert!(!session_rows(&b).is_empty());

    // Counters, as Jool reports them.
    let n = inst["stats"].as_array().unwrap().len();
    b.wait(
        T,
        "the counters",
        &format!("return document.querySelectorAll('#n64-stats tbody tr').length === {n}"),
    );
    b.screenshot(&artifact("nat64-desktop.png"));
    assert_clean_console(&b, &[]);
}
