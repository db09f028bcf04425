//! `pirouterd demo` as a newcomer runs it: it serves on 127.0.0.1, says it is a demo, prints
//! its URL and token, and leaves nothing behind when stopped.
mod common;

use common::Daemon;
use std::time::Duration;

fn sleeping_peers() -> usize {
    // The demo's "internet" namespace is a `sleep infinity` child.
    let out = std::process::Command::new("pgrep")
        .args(["-f", "^sleep infinity$"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn demo_serves_its_page_and_cleans_up() {
    let before = sleeping_peers();
    let mut d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let s = d.get_json("/api/v1/status");
    assert_eq!(s["demo"], true);
    let (code, body) = d.get("/", None);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("pirouterd"));
    let out = common::wait_for(Duration::from_secs(5), || {
        let o = d.stdout();
        o.contains("token for changes").then_some(o)
    })
    .expect("the demo prints its URL and token");
    assert!(out.contains(&format!("open http://{}/", d.addr)), "{out}");
    assert_eq!(
        sleeping_peers(),
        before + 1,
        "the internet namespace runs while the demo does"
    );
    let st = d
        .guard
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits on Ctrl-C");
    assert!(st.success(), "{}", d.stderr());
    let gone = common::wait_for(Duration::from_secs(5), || {
        (sleeping_peers() == before).then_some(())
    });
    assert!(
        gone.is_some(),
        "the demo's internet namespace process is gone after exit"
    );
}
