//! Relays from the page, in a real browser against `pirouterd demo`: the token entered once
//! in the page turns the fireplace on (the API and the button agree, with its auto-off timer);
//! without a token the change is refused and the page says why, in the server's words.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::time::Duration;

use common::Daemon;
use serde_json::{json, Value};
use web_driver::{artifact, assert_clean_console, demo_token, Browser};

const T: Duration = Duration::from_secs(20);

fn relay(d: &Daemon, name: &str) -> Value {
    let all = d.get_json("/api/v1/relays");
    all["relays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no relay {name} in {all}"))
        .clone()
}

#[test]
fn relay_button_turns_the_fireplace_on_with_the_saved_token() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let token = demo_token(&d);
    assert_eq!(relay(&d, "fireplace")["on"], false);
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));

    // The token, entered once through the form, is kept in the browser.
    let btn = b.wait_find("#token-btn", T);
    b.click(&btn);
    let input = b.wait_find("#token-input", T);
    b.type_text(&input, &token);
    b.type_text(&input, "\u{E007}"); // Enter submits the form
    b.wait(
        T,
        "the token in localStorage",
        &format!("return localStorage.getItem('pirouterd-token') === '{token}'"),
    );
    b.goto(&format!("http://{}/", d.addr)); // still there after a reload

    let fire = b.wait_find("button.relay[data-relay=fireplace]", T);
    assert_eq!(b.attr(&fire, "aria-pressed").as_deref(), Some("false"));
    assert!(b.attr(&fire, "aria-label").unwrap().contains("fireplace"));
    b.click(&fire);
    // The confirmation shows for 4 s: read it first.
    let msg = b.wait(
        T,
        "the confirmation",
        "const m=document.querySelector('#msg');return !m.hidden&&m.innerText",
    );
    assert!(
        msg.as_str().unwrap().contains("fireplace turned on"),
        "{msg}"
    );
    b.wait(T, "the button to show the fireplace on",
        "const e=document.querySelector('button.relay[data-relay=fireplace]');return e.getAttribute('aria-pressed')==='true'");
    let r = relay(&d, "fireplace");
    assert_eq!(r["on"], true, "the API agrees: {r}");
    assert!(r["source"].to_string().contains("api"), "{r}");
    // max_on is 4h in the demo: the button counts the auto-off down.
    let timer = b.wait(T, "the auto-off countdown",
        "const t=document.querySelector('button.relay[data-relay=fireplace] .timer').innerText;return t.includes('auto-off in')&&t");
    assert!(timer.as_str().unwrap().contains("on for"), "{timer}");
    b.screenshot(&artifact("relays-on-desktop.png"));

    // And off again from the page.
    b.click(&fire);
    b.wait(T, "the fireplace off again",
        "return document.querySelector('button.relay[data-relay=fireplace]').getAttribute('aria-pressed')==='false'");
    assert_eq!(relay(&d, "fireplace")["on"], false);
    // A gas fireplace has a minimum off time (1 min in the demo): turning it on again at once
    // is refused, and the page shows the safety rule's own words.
    b.click(&fire);
    let msg = b.wait(
        T,
        "the safety refusal",
        "const m=document.querySelector('#msg');\
        return !m.hidden&&m.innerText.includes('409')&&m.innerText",
    );
    let msg = msg.as_str().unwrap();
    assert!(msg.starts_with("Refused by a safety rule (409):"), "{msg}");
    let (code, _, body) = d.request(
        "POST",
        "/api/v1/relays/fireplace",
        Some(&token),
        Some(r#"{"on":true}"#),
    );
    assert_eq!(code, 409);
    let reason: Value = serde_json::from_slice(&body).unwrap();
    let words = reason["error"]["message"].as_str().unwrap();
    // The remaining time moves between the two refusals; the sentence before it does not.
    let stem = &words[..words.find(char::is_numeric).unwrap_or(words.len())];
    assert!(
        stem.len() > 10 && msg.contains(stem),
        "{msg} lacks {stem:?}"
    );
    assert_eq!(relay(&d, "fireplace")["on"], false);
    b.wait(T, "the min-off countdown", "return document.querySelector('button.relay[data-relay=fireplace] .timer').innerText.includes('can turn on in')");
    // "Turn on for" 15 minutes: the API's auto-off is 15 minutes after the switch.
    b.select("#relay-for", "15m");
    let porch = b.wait_find("button.relay[data-relay=porch-light]", T);
    b.click(&porch);
    b.wait(T, "the porch light on",
        "return document.querySelector('button.relay[data-relay=porch-light]').getAttribute('aria-pressed')==='true'");
    let p = relay(&d, "porch-light");
    let span = p["auto_off_at"].as_u64().unwrap() - p["since"].as_u64().unwrap();
    assert!(
        (899_000..=901_000).contains(&span),
        "auto-off {span} ms after the switch: {p}"
    );
    // Both changes are in the event log view, newest first, with the page's client as source.
    let tab = b.wait_find("#tab-events", T);
    b.click(&tab);
    b.wait(
        T,
        "the relay events",
        "const l=Array.from(document.querySelectorAll('#ev-list li')).map(e=>e.innerText)\
         .filter(t=>t.includes('fireplace')&&t.includes('api'));return l.length>=2",
    );
    assert_clean_console(&b, &[("/api/v1/relays/fireplace", 409)]);
}

#[test]
fn without_a_token_the_change_is_refused_with_the_servers_reason() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let b = Browser::start(360, 780);
    b.viewport(360, 780, true);
    b.goto(&format!("http://{}/", d.addr));
    let porch = b.wait_find("button.relay[data-relay=porch-light]", T);
    b.click(&porch);
    let msg = b.wait(
        T,
        "the refusal",
        "const m=document.querySelector('#msg');return !m.hidden&&m.innerText",
    );
    let msg = msg.as_str().unwrap();
    assert!(msg.contains("401"), "{msg}");
    // The server's own reason, not a generic failure.
    let (code, _, body) = d.request(
        "POST",
        "/api/v1/relays/porch-light",
        None,
        Some(r#"{"on":true}"#),
    );
    assert_eq!(code, 401);
    let reason: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        msg.contains(reason["error"]["message"].as_str().unwrap()),
        "{msg} lacks {reason}"
    );
    // The token form opens, focused, so the fix is one paste away.
    assert_eq!(
        b.js("return document.activeElement.id", json!([])),
        json!("token-input")
    );
    assert_eq!(relay(&d, "porch-light")["on"], false, "nothing changed");
    assert_eq!(
        b.js("return document.querySelector('button.relay[data-relay=porch-light]').getAttribute('aria-pressed')", json!([])),
        json!("false")
    );
    b.screenshot(&artifact("refused-phone.png"));
    // The only console entry is the browser's own note of the 401 the test provoked.
    assert_clean_console(&b, &[("/api/v1/relays/porch-light", 401)]);
}
