//! The page against `pirouterd serve` with the two token setups the demo does not have: reads
//! behind the token (the page asks for it, then fills in), and no token configured at all (a
//! change says how to set one: 403 with the server's words).
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Daemon, TempDir};
use serde_json::json;
use web_driver::{artifact, assert_clean_console, Browser};

const T: Duration = Duration::from_secs(20);
const TOKEN: &str = "web-test-token-0123456789abcdef";

/// `serve` with a sim relay, no NAT64, no WAN; `http` is the `[http]` section's body.
fn serve(dir: &TempDir, http: &str) -> Daemon {
    let cfg = dir.file(
        "p.toml",
        &format!(
            "[http]\n{http}\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n\
             [gpio]\nbackend = \"sim\"\n[[relay]]\nname = \"lamp\"\npin = 5\n",
            dir.0.display()
        ),
    );
    Daemon::start(&[
        "serve",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
}

#[test]
fn reads_behind_the_token_ask_for_it_then_fill_in() {
    let dir = TempDir::new("web-auth");
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = serve(
        &dir,
        &format!(
            "token_file = \"{}\"\nread_requires_token = true",
            token.display()
        ),
    );
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));
    b.wait(
        T,
        "the request for the token",
        "return document.querySelector('#updated').innerText.includes('needs the token')\
        && !document.querySelector('#token-form').hidden",
    );
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#components tbody tr').length",
            json!([])
        ),
        json!(0)
    );
    let input = b.wait_find("#token-input", T);
    b.type_text(&input, TOKEN);
    b.type_text(&input, "\u{E007}");
    b.wait(
        T,
        "the components, read with the token",
        "return Array.from(document.querySelectorAll('#components tbody tr'))\
        .some(r=>r.innerText.startsWith('http')&&r.innerText.includes('up'))",
    );
    b.wait(
        T,
        "the relay, read with the token",
        "return !!document.querySelector('button.relay[data-relay=lamp]')",
    );
    b.screenshot(&artifact("reads-with-token-desktop.png"));
    // The page itself stayed open; only the API needed the token until it was given.
    assert_clean_console(&b, &[("/api/v1/status", 401)]);
}

#[test]
fn without_a_configured_token_a_change_says_how_to_set_one() {
    let dir = TempDir::new("web-notoken");
    let d = serve(&dir, "");
    let b = Browser::start(1280, 900);
    b.goto(&format!("http://{}/", d.addr));
    let lamp = b.wait_find("button.relay[data-relay=lamp]", T);
    b.click(&lamp);
    let msg = b.wait(
        T,
        "the refusal",
        "const m=document.querySelector('#msg');return !m.hidden&&m.innerText",
    );
    let msg = msg.as_str().unwrap();
    assert!(msg.starts_with("Refused (403):"), "{msg}");
    assert!(
        msg.contains("http.token_file"),
        "the server's advice is shown: {msg}"
    );
    assert_eq!(d.get_json("/api/v1/relays")["relays"][0]["on"], false);
    assert_clean_console(&b, &[("/api/v1/relays/lamp", 403)]);
}
