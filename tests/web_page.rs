//! The page in a real browser (headless Chromium over chromedriver) against `pirouterd demo`:
//! it renders live numbers, is served compressed and within its size budget, fits a 360 px
//! phone, can be driven from the keyboard, and logs no console errors. Screenshots go to
//! `artifacts/`.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::time::Duration;

use common::Daemon;
use serde_json::json;
use web_driver::{artifact, assert_clean_console, Browser};

const T: Duration = Duration::from_secs(20);

fn demo() -> Daemon {
    Daemon::start(&["demo", "--listen", "127.0.0.1:0"])
}

#[test]
fn overview_renders_live_numbers_compressed_on_phone_and_desktop() {
    let d = demo();
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));

    // Every component the daemon reports is in the table with its state.
    let status = d.get_json("/api/v1/status");
    let comps = status["components"]
        .as_object()
        .expect("components")
        .clone();
    assert!(!comps.is_empty());
    b.wait(
        T,
        "one row per component",
        &format!(
            "return document.querySelectorAll('#components tbody tr').length === {}",
            comps.len()
        ),
    );
    for (name, c) in &comps {
        let state = b.js(
            "const r=document.querySelector(`#components tr[data-key='${arguments[0]}']`);return r&&r.children[1].innerText.trim()",
            json!([name]),
        );
        // The state may move on between the two reads (starting -> up), never to nonsense.
        let s = state.as_str().unwrap_or("");
        assert!(
            ["starting", "up", "degraded", "disabled"].contains(&s),
            "{name}: {s:?}"
        );
        if c["state"] == "up" {
            assert_eq!(s, "up", "{name}");
        }
    }
    assert!(
        b.find("#demo-badge:not([hidden])").is_some(),
        "the demo says it is one"
    );

    // Live: the uptime shown comes from the server and moves with the refresh.
    let first = b.wait(
        T,
        "the version line",
        "return document.querySelector('#version').innerText",
    );
    assert!(first
        .as_str()
        .unwrap_or("")
        .starts_with(&format!("v{}", status["version"].as_str().unwrap())));
    b.wait(
        Duration::from_secs(15),
        "a refresh that moves the uptime",
        &format!("const t=document.querySelector('#version').innerText;return t!=={first} && t"),
    );

    // Served gzipped (the browser decoded it) and within the 60 KiB budget.
    let sizes = b.js(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
         .filter(e=>!e.name.includes('/api/')).map(e=>[e.name,e.encodedBodySize,e.decodedBodySize])",
        json!([]),
    );
    let sizes = sizes.as_array().expect("entries").clone();
    assert_eq!(sizes.len(), 3, "the page is exactly three files: {sizes:?}");
    let (mut raw, mut wire) = (0, 0);
    for e in &sizes {
        let (enc, dec) = (e[1].as_u64().unwrap(), e[2].as_u64().unwrap());
        assert!(
            enc * 2 < dec,
            "{} arrives compressed: {enc} of {dec} bytes",
            e[0]
        );
        raw += dec;
        wire += enc;
    }
    assert!(
        raw < 60 * 1024,
        "page is {raw} bytes uncompressed, budget 60 KiB"
    );
    eprintln!("page: {raw} bytes raw, {wire} bytes on the wire");

    b.screenshot(&artifact("overview-desktop-light.png"));
    b.color_scheme(true);
    b.screenshot(&artifact("overview-desktop-dark.png"));
    b.color_scheme(false);

    // A 360 px phone: nothing wider than the screen.
    b.viewport(360, 780, true);
    b.wait(T, "the phone layout", "return innerWidth === 360");
    let w = b.js("return document.documentElement.scrollWidth", json!([]));
    assert!(
        w.as_u64().unwrap() <= 360,
        "page is {w} px wide on a 360 px phone"
    );
    b.screenshot(&artifact("overview-phone.png"));

    assert_clean_console(&b, &[]);
}

#[test]
fn every_view_opens_from_the_keyboard_without_errors() {
    let d = demo();
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));
    b.wait(
        T,
        "the first refresh",
        "return document.querySelector('#updated').innerText.startsWith('updated')",
    );
    b.wait_find("#tab-overview", T);
    b.js("document.querySelector('#tab-overview').focus()", json!([]));
    for view in ["firewall", "drops", "nat64", "events", "overview"] {
        b.keys("\u{E014}"); // ArrowRight on whichever tab has focus
        let got = b.wait(T, "the next view", &format!(
            "return location.hash === '#{view}' && !document.querySelector('#{view}').hidden \
             && document.activeElement.id === 'tab-{view}' && document.activeElement.getAttribute('aria-selected') === 'true'"));
        assert_eq!(got, json!(true));
        // Every area panel of the view either shows data or says why not; nothing else.
        b.wait(
            T,
            "the view's refresh",
            "return document.querySelector('#updated').innerText.startsWith('updated')",
        );
        let footer = b.js(
            "return document.querySelector('#updated').innerText",
            json!([]),
        );
        assert!(
            !footer.as_str().unwrap_or("").contains("page error"),
            "{footer}"
        );
        b.screenshot(&artifact(&format!("view-{view}-desktop.png")));
    }
    // On a 360 px phone no view is wider than the screen (wide tables scroll inside their box).
    b.viewport(360, 780, true);
    for view in ["overview", "firewall", "drops", "nat64", "events"] {
        let tab = b.wait_find(&format!("#tab-{view}"), T);
        b.click(&tab);
        b.wait(T, "the view on the phone", &format!(
            "return !document.querySelector('#{view}').hidden && document.querySelector('#updated').innerText.startsWith('updated')"));
        let w = b.js("return document.documentElement.scrollWidth", json!([]));
        assert!(
            w.as_u64().unwrap() <= 360,
            "{view} is {w} px wide on a 360 px phone"
        );
        b.screenshot(&artifact(&format!("view-{view}-phone.png")));
    }
    // Every control has an accessible name.
    let unnamed = b.js(
        "return Array.from(document.querySelectorAll('button,input:not([type=hidden]):not([hidden]),select'))\
         .filter(e=>!(e.getAttribute('aria-label')||e.labels&&e.labels.length&&e.labels[0].innerText.trim()||e.innerText&&e.innerText.trim()))\
         .map(e=>e.outerHTML)",
        json!([]),
    );
    assert_eq!(unnamed, json!([]), "controls without an accessible name");
    assert_clean_console(&b, &[]);
}

#[test]
fn refresh_pauses_while_the_tab_is_hidden_and_resumes_at_once() {
    let d = demo();
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));
    b.wait(
        T,
        "the first refresh",
        "return document.querySelector('#updated').innerText.startsWith('updated')",
    );
    let count = "return performance.getEntriesByType('resource').filter(e=>e.name.includes('/api/v1/status')).length";
    // Headless Chromium never hides the tab, so the test tells the page it is hidden the way
    // the browser would: document.hidden and a visibilitychange event.
    b.js(
        "Object.defineProperty(document,'hidden',{configurable:true,get:()=>true});\
         document.dispatchEvent(new Event('visibilitychange'))",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(500)); // a refresh already under way may finish
    let before = b.js(count, json!([])).as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(11)); // two refresh periods
    let after = b.js(count, json!([])).as_u64().unwrap();
    assert_eq!(before, after, "no reads while hidden");
    b.js(
        "Object.defineProperty(document,'hidden',{configurable:true,get:()=>false});\
         document.dispatchEvent(new Event('visibilitychange'))",
        json!([]),
    );
    b.wait(Duration::from_secs(2), "a refresh as soon as the tab shows", &format!(
        "return performance.getEntriesByType('resource').filter(e=>e.name.includes('/api/v1/status')).length > {after}"));
    assert_clean_console(&b, &[]);
}
