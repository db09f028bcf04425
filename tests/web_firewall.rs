//! The firewall view in a real browser against `pirouterd demo`: sorting by never-hit puts
//! every never-hit rule first, exactly as the API counts them; the search filters the rows;
//! an element added to the managed blocklist from the page is in the kernel's set
//! (`nft list set` inside the demo's namespaces), counts down its expiry, and goes again when
//! removed from the page.
#![allow(clippy::unwrap_used)]
mod common;
mod web_driver;

use std::process::Command;
use std::time::Duration;

use common::Daemon;
use serde_json::{json, Value};
use web_driver::{artifact, assert_clean_console, demo_token, Browser};

const T: Duration = Duration::from_secs(30);

fn rows(b: &Browser) -> Value {
    b.js(
        "return Array.from(document.querySelectorAll('#fw-rules tbody tr')).map(tr=>({\
         never: tr.dataset.neverHit==='true', text: tr.children[1].innerText, chain: tr.children[0].innerText}))",
        json!([]),
    )
}

#[test]
fn firewall_view_sorts_never_hit_first_and_search_filters() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let b = Browser::start(1280, 1000);
    b.goto(&format!("http://{}/#firewall", d.addr));
    b.wait(
        T,
        "the rules",
        "return document.querySelectorAll('#fw-rules tbody tr').length > 5",
    );

    b.select("#fw-sort", "dead");
    let api = d.get_json("/api/v1/firewall/rules?sort=dead");
    let dead = api["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["never_hit"] == true)
        .count();
    assert!(
        dead > 0,
        "the demo ruleset has never-hit rules (upnp, invalid...): {api}"
    );
    let total = api["rules"].as_array().unwrap().len();
    // Wait for the re-sorted list, then check it: all never-hit rules, then the rest.
    b.wait(
        T,
        "never-hit rules first",
        &format!(
            "const r=Array.from(document.querySelectorAll('#fw-rules tbody tr'));\
         return r.length==={total} && r.slice(0,{dead}).every(t=>t.dataset.neverHit==='true')"
        ),
    );
    let shown = rows(&b);
    let shown = shown.as_array().unwrap();
    let first_hit = shown
        .iter()
        .position(|r| r["never"] == false)
        .unwrap_or(shown.len());
    assert!(
        shown[first_hit..].iter().all(|r| r["never"] == false),
        "never-hit rules all come first: {shown:#?}"
    );
    assert!(
        shown[0]["text"].as_str().unwrap().contains("never hit"),
        "{:?}",
        shown[0]
    );
    b.screenshot(&artifact("firewall-never-hit-desktop.png"));

    // Search: only matching rows, as many as the API's rules that match.
    let search = b.wait_find("#fw-search", T);
    b.type_text(&search, "knock");
    let want = api["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let hay = format!("{} {} {}", r["text"], r["comment"], r["chain"]).to_lowercase();
            hay.contains("knock")
        })
        .count();
    assert!(want > 0 && want < total);
    b.wait(
        T,
        "the filtered rows",
        &format!("return document.querySelectorAll('#fw-rules tbody tr').length === {want}"),
    );
    let shown = rows(&b);
    for r in shown.as_array().unwrap() {
        let hay = format!("{} {}", r["text"], r["chain"]).to_lowercase();
        assert!(hay.contains("knock"), "{r}");
    }
    b.clear(&search);
    b.type_text(&search, "telnet");
    b.wait(
        T,
        "one telnet rule",
        "const r=document.querySelectorAll('#fw-rules tbody tr');\
        return r.length===1 && r[0].innerText.includes('reject with tcp reset')",
    );
    assert_clean_console(&b, &[]);
}

fn nft_set(d: &Daemon) -> String {
    let pid = d.guard.pid().to_string();
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-U",
            "-n",
            "nft",
            "list",
            "set",
            "inet",
            "filter",
            "blocklist",
        ])
        .output()
        .expect("nsenter (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn managed_set_element_added_from_the_page_is_in_the_kernel_set() {
    let d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let token = demo_token(&d);
    const IP: &str = "192.0.2.77";
    assert!(!nft_set(&d).contains(IP));
    let b = Browser::start(1280, 1000);
    b.goto(&format!("http://{}/#firewall", d.addr));
    b.js(
        "localStorage.setItem('pirouterd-token', arguments[0])",
        json!([token]),
    );
    let set = "article.set[data-set='inet/filter/blocklist']";
    let show = b.wait_find(&format!("{set} button.show-elements"), T);
    b.click(&show);
    b.wait(
        T,
        "the blocklist's elements",
        &format!("return document.querySelectorAll(\"{set} .el-list li[data-key]\").length > 0"),
    );
    let input = b.wait_find(&format!("{set} input[name=element]"), T);
    b.type_text(&input, IP);
    let timeout = b.wait_find(&format!("{set} input[name=timeout]"), T);
    b.type_text(&timeout, "10m");
    let add = b.wait_find(&format!("{set} form.add-element button[type=submit]"), T);
    b.click(&add);
    let li = format!("{set} li[data-key='{IP}']");
    let first = b.wait(T, "the new element with its expiry", &format!(
        "const e=document.querySelector(\"{li} .exp\");return e&&e.innerText.includes('expires in')&&e.innerText"));
    assert!(
        first.as_str().unwrap().contains("expires in 9m")
            || first.as_str().unwrap().contains("expires in 10m"),
        "{first}"
    );
    let listed = nft_set(&d);
    assert!(listed.contains(IP), "the kernel's set has it:\n{listed}");
    // The expiry counts down in the page without a reload.
    std::thread::sleep(Duration::from_millis(2200));
    let later = b.js(
        &format!("return document.querySelector(\"{li} .exp\").innerText"),
        json!([]),
    );
    assert_ne!(first, later, "the countdown moves");
    b.screenshot(&artifact("firewall-set-desktop.png"));

    let remove = b.wait_find(&format!("{li} button"), T);
    assert_eq!(
        b.attr(&remove, "aria-label").unwrap(),
        format!("remove {IP} from blocklist")
    );
    b.click(&remove);
    b.wait(
        T,
        "the element gone from the page",
        &format!("return !document.querySelector(\"{li}\")"),
    );
    assert!(
        !nft_set(&d).contains(IP),
        "removed from the kernel's set too"
    );
    assert_clean_console(&b, &[]);
}
