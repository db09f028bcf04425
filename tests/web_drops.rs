//! The drops view in a real browser against `pirouterd demo` (whose traffic thread sends
//! scans that the ruleset drops and logs to NFLOG): totals for the chosen window, top tables
//! drawn as bars, recent drops, and the log prefix linking to the rule that logged them.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::time::Duration;

use common::Daemon;
use serde_json::json;
use web_driver::{artifact, assert_clean_console, Browser};

const T: Duration = Duration::from_secs(30);

#[test]
fn drops_view_shows_totals_tops_recent_and_links_the_rule() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let b = Browser::start(1280, 1000);
    b.goto(&format!("http://{}/#drops", d.addr));
    let shown = b.wait(
        T,
        "some drops counted",
        "const t=document.querySelector('#dr-totals').innerText;\
        const n=parseInt(t.replace(/,/g,''));return n>0&&n",
    );
    let shown = shown.as_u64().unwrap();
    let api = d.get_json("/api/v1/drops?window=5m")["events"]
        .as_u64()
        .unwrap();
    assert!(
        shown <= api,
        "the page's {shown} drops are the API's, never more (API now {api})"
    );
    // Top sources: the demo's scanners, each with a bar whose label says the count.
    let tops = b.js("return Array.from(document.querySelectorAll('#dr-tops tr svg.bar')).map(s=>s.getAttribute('aria-label'))", json!([]));
    assert!(
        tops.as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("sources 203.0.113.")),
        "{tops}"
    );
    b.wait(
        T,
        "recent drops",
        "return document.querySelectorAll('#dr-recent tbody tr').length > 0",
    );
    // Another window is asked for and shown.
    b.select("#dr-window", "1h");
    b.wait(
        T,
        "the hour's totals",
        "return document.querySelector('#dr-totals').innerText.includes('last hour')",
    );
    b.screenshot(&artifact("drops-desktop.png"));
    // The prefix links to the rule that logs with it.
    let link = b.wait_find("#dr-tops a[href^='#firewall']", T);
    b.click(&link);
    b.wait(T, "the logging rule", "const r=document.querySelectorAll('#fw-rules tbody tr');\
        return !document.querySelector('#firewall').hidden && r.length>=1 && Array.from(r).every(t=>t.innerText.includes('log prefix'))");
    assert_clean_console(&b, &[]);
}
