//! The WAN card in a real browser against `pirouterd demo`: pulling the simulated WAN cable
//! from the page engages the RA block (page and API agree), plugging it back releases it; the
//! RA block mode buttons set the mode.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::time::Duration;

use common::Daemon;
use serde_json::json;
use web_driver::{artifact, assert_clean_console, demo_token, Browser};

const T: Duration = Duration::from_secs(40);

#[test]
fn flapping_the_demo_wan_shows_the_ra_block_engage() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let token = demo_token(&d);
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));
    b.js(
        "localStorage.setItem('pirouterd-token', arguments[0])",
        json!([token]),
    );
    b.wait(T, "the WAN up, no RA block", "const w=document.querySelector('#ov-wan .wan');\
        return w && w.dataset.raActive==='false' && w.querySelector('[data-field=state]').innerText.endsWith('up')");

    let pull = b.wait_find("#ov-wan button.flap:not([hidden])", T);
    assert!(b.text(&pull).contains("Pull the WAN cable"));
    b.click(&pull);
    b.wait(T, "the RA block engaged", "const w=document.querySelector('#ov-wan .wan');\
        return w.dataset.raActive==='true' && w.querySelector('[data-field=state]').innerText.endsWith('down')");
    let api = d.get_json("/api/v1/wan");
    assert_eq!(api["ra_block"]["active"], true, "{api}");
    assert_eq!(api["up"], false, "{api}");
    let text = b.js(
        "return document.querySelector('[data-field=ra-block]').innerText",
        json!([]),
    );
    assert!(text.as_str().unwrap().contains("dropped"), "{text}");
    b.screenshot(&artifact("wan-down-ra-block-desktop.png"));

    let plug = b.wait_find("#ov-wan button.flap", T);
    b.wait(
        T,
        "the plug-back button",
        "return document.querySelector('#ov-wan button.flap').innerText.includes('Plug')",
    );
    b.click(&plug);
    b.wait(T, "the RA block released", "const w=document.querySelector('#ov-wan .wan');\
        return w.dataset.raActive==='false' && w.querySelector('[data-field=state]').innerText.endsWith('up')");
    assert_eq!(d.get_json("/api/v1/wan")["ra_block"]["active"], false);

    // The mode buttons: "on" blocks regardless of the WAN.
    let on = b.wait_find("#ov-wan button[data-mode=on]", T);
    b.click(&on);
    b.wait(T, "mode on pressed and the block on", "const w=document.querySelector('#ov-wan .wan');\
        return w.dataset.raActive==='true' && w.querySelector('button[data-mode=on]').getAttribute('aria-pressed')==='true'");
    assert_eq!(d.get_json("/api/v1/wan")["ra_block"]["mode"], "on");
    let auto = b.wait_find("#ov-wan button[data-mode=auto]", T);
    b.click(&auto);
    b.wait(
        T,
        "back to auto",
        "return document.querySelector('#ov-wan .wan').dataset.raActive==='false'",
    );
    assert_clean_console(&b, &[]);
}
