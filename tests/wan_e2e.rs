//! The WAN area through the real binary: `pirouterd serve` in a router namespace whose `wan0`
//! veth leads to an "isp" namespace and whose `lan0` leads to a client. Taking the far end
//! down must show in `/api/v1/wan`, `/metrics` and `/api/v1/events`, engage the block in the
//! kernel (checked with `nft -j`), send the final RA to the client, and drop a real RA; modes
//! change over the API with the token; SIGTERM and SIGKILL both leave no table behind.
#![allow(clippy::unwrap_used)]
mod common;
mod wan_util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{bin, wait_for, Daemon, Netns, TempDir};
use pirouterd::sys::ra_block::send_ra;
use pirouterd::wan::ra::RouterAdvert;
use wan_util::{in_netns, pirouterd_table, router_and_client, RaListener};

const TOKEN: &str = "wan-e2e-token-0123456789";

struct Setup {
    router: Netns,
    client: Netns,
    isp: Netns,
    dir: TempDir,
}

fn setup(tag: &str, extra_wan: &str) -> (Setup, Daemon) {
    let (router, client) = router_and_client(tag);
    let isp = Netns::new(tag);
    router.veth("wan0", "10.81.0.1/30", &isp, "isp0", "10.81.0.2/30");
    let dir = TempDir::new(tag);
    let token = dir.file("token", TOKEN);
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.file(
        "pirouterd.toml",
        &format!(
            "[http]\ntoken_file = \"{}\"\n[state]\ndir = \"{}\"\n[nat64]\nenabled = false\n\
             [wan]\ninterface = \"wan0\"\ndown_after = \"1s\"\nup_after = \"2s\"\n\
             lan_interfaces = [\"lan0\"]\n{extra_wan}",
            token.display(),
            dir.0.display()
        ),
    );
    let sock = dir.0.join("http.sock");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &router.name, bin(), "serve", "--config"])
        .arg(&cfg)
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()));
    let d = Daemon::start_cmd(cmd);
    (
        Setup {
            router,
            client,
            isp,
            dir,
        },
        d,
    )
}

fn wan(d: &Daemon) -> serde_json::Value {
    d.get_json("/api/v1/wan")
}

fn wait_wan(
    d: &Daemon,
    secs: u64,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(Duration::from_secs(secs), || {
        let w = wan(d);
        f(&w).then_some(w)
    })
    .unwrap_or_else(|| panic!("{what}; last: {}\nstderr:\n{}", wan(d), d.stderr()))
}

fn metrics(d: &Daemon) -> String {
    let (s, b) = d.get("/metrics", None);
    assert_eq!(s, 200);
    String::from_utf8(b).unwrap()
}

fn events(d: &Daemon) -> Vec<serde_json::Value> {
    d.get_json("/api/v1/events")["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn post_mode(d: &Daemon, mode: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let (s, _, b) = d.request(
        "POST",
        "/api/v1/wan/ra-block",
        token,
        Some(&format!("{{\"mode\":\"{mode}\"}}")),
    );
    (s, serde_json::from_slice(&b).unwrap_or_default())
}

#[test]
fn wan_down_engages_the_block_everywhere_and_modes_work() {
    let (s, mut d) = setup("wee", "");
    let listener = RaListener::start(&s.client);
    let w = wait_wan(&d, 5, "WAN up after start", |w| w["up"] == true);
    assert_eq!(w["interface"], "wan0");
    assert_eq!(w["ra_block"]["active"], false);
    assert_eq!(w["ra_block"]["mode"], "auto");
    assert_eq!(w["link"]["operstate"], "up");
    let m = metrics(&d);
    assert!(m.contains("pirouterd_wan_up{interface=\"wan0\"} 1"), "{m}");
    assert!(m.contains("pirouterd_ra_block_active 0"), "{m}");
    assert!(
        m.contains("pirouterd_ra_block_mode{mode=\"auto\"} 1"),
        "{m}"
    );
    assert!(m.contains("pirouterd_ra_block_mode{mode=\"on\"} 0"), "{m}");
    assert!(
        m.contains("pirouterd_component_up{component=\"wan\"} 1"),
        "{m}"
    );
    assert!(pirouterd_table(&s.router).is_none());

    // the ISP side goes away: carrier lost
    s.isp.run(&["ip", "link", "set", "isp0", "down"]);
    let w = wait_wan(&d, 4, "block engaged after down_after", |w| {
        w["up"] == false && w["ra_block"]["active"] == true
    });
    assert_eq!(w["ra_block"]["reason"], "wan_down");
    assert_eq!(w["ra_block"]["owner"], true);
    assert_eq!(w["ra_block"]["final_ra"], serde_json::json!({"sent": 1}));
    assert!(w["last_change"]["at"].as_u64().is_some());
    assert_eq!(w["last_change"]["to"], "down");
    let v = pirouterd_table(&s.router).expect("table in the kernel");
    assert_eq!(v.rules.len(), 2, "mark exemption + drop");
    // the final RA with router lifetime 0 reached the LAN client
    let got = listener.collect(Duration::from_millis(500));
    assert!(
        got.iter().any(|ra| ra.router_lifetime == 0),
        "final RA on lan0: {got:?}"
    );
    let m = metrics(&d);
    assert!(m.contains("pirouterd_wan_up{interface=\"wan0\"} 0"), "{m}");
    assert!(m.contains("pirouterd_ra_block_active 1"), "{m}");
    common::promtool_check_metrics(&m);
    let ev = events(&d);
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "wan" && e["message"].as_str().unwrap().contains("wan0 is down")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "ra_block" && e["details"]["active"] == true),
        "{ev:?}"
    );

    // an RA daemon's advertisement is dropped and counted
    let normal = RouterAdvert {
        router_lifetime: 1800,
        ..RouterAdvert::withdraw()
    };
    in_netns(&s.router, || {
        for _ in 0..2 {
            assert!(send_ra("lan0", 0, &normal).is_err(), "dropped in output");
        }
    });
    let w = wait_wan(&d, 5, "dropped count read back", |w| {
        w["ra_block"]["dropped_packets"] == 2
    });
    assert_eq!(w["ra_block"]["dropped_bytes"], 2 * 56);
    assert!(listener
        .collect(Duration::from_millis(300))
        .iter()
        .all(|ra| ra.router_lifetime == 0));
    assert!(metrics(&d).contains("pirouterd_ra_block_dropped_packets_total 2"));

    // modes: the token is needed; off releases at once, auto re-engages (WAN still down)
    assert_eq!(post_mode(&d, "off", None).0, 401);
    assert_eq!(post_mode(&d, "off", Some("wrong")).0, 401);
    let (code, body) = post_mode(&d, "sideways", Some(TOKEN));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("bad_mode"))
    );
    let (code, body) = post_mode(&d, "off", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["ra_block"]["active"], false);
    assert_eq!(body["ra_block"]["mode"], "off");
    assert!(pirouterd_table(&s.router).is_none(), "released at once");
    let (code, body) = post_mode(&d, "auto", Some(TOKEN));
    assert_eq!(
        (code, &body["ra_block"]["active"]),
        (200, &serde_json::json!(true))
    );
    assert!(pirouterd_table(&s.router).is_some());
    let ev = events(&d);
    assert!(
        ev.iter().any(|e| e["kind"] == "ra_block"
            && e["source"].as_str().unwrap().starts_with("api ")
            && e["message"].as_str().unwrap().contains("mode set to off")),
        "{ev:?}"
    );
    // the mode set through the API is remembered in the state dir
    let saved = std::fs::read_to_string(s.dir.0.join("wan-ra-block.json")).unwrap();
    assert!(saved.contains("\"mode\":\"auto\""), "{saved}");

    // the WAN returns: released after up_after
    s.isp.run(&["ip", "link", "set", "isp0", "up"]);
    let w = wait_wan(&d, 5, "released after up_after", |w| {
        w["up"] == true && w["ra_block"]["active"] == false
    });
    assert_eq!(w["flaps"], 1);
    assert!(pirouterd_table(&s.router).is_none());
    // total dropped survives the table
    assert_eq!(w["ra_block"]["dropped_packets"], 2);

    // forced on, then a clean stop: the table goes with the daemon
    let (code, _) = post_mode(&d, "on", Some(TOKEN));
    assert_eq!(code, 200);
    assert!(pirouterd_table(&s.router).is_some());
    let st = d
        .guard
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(st.success(), "{}", d.stderr());
    assert!(
        pirouterd_table(&s.router).is_none(),
        "no stale block after stop"
    );
    assert!(
        d.stderr()
            .contains("RA block released: pirouterd is stopping"),
        "{}",
        d.stderr()
    );
}

#[test]
fn a_killed_daemon_leaves_no_block_behind() {
    let (s, mut d) = setup("wek", "ra_block = \"on\"\n");
    wait_wan(&d, 5, "forced on at start", |w| {
        w["ra_block"]["active"] == true
    });
    assert!(pirouterd_table(&s.router).is_some());
    d.guard
        .signal_and_wait("KILL", Duration::from_secs(5))
        .expect("killed");
    let gone = wait_for(Duration::from_secs(2), || {
        pirouterd_table(&s.router).is_none().then_some(())
    });
    assert!(
        gone.is_some(),
        "the kernel removed the owner table with the daemon"
    );
}

#[test]
fn the_demo_wan_can_be_flapped_from_the_api() {
    let mut d = Daemon::start(&["demo", "--listen", "127.0.0.1:0"]);
    let out = wait_for(Duration::from_secs(5), || {
        let o = d.stdout();
        o.contains("token for changes").then_some(o)
    })
    .expect("token printed");
    let token = out
        .lines()
        .find_map(|l| l.split("token for changes").nth(1))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .trim()
        .to_string();
    let w = wait_wan(&d, 5, "demo WAN up", |w| w["up"] == true);
    assert_eq!(w["demo_flap"], true);
    let (code, _, b) = d.request(
        "POST",
        "/api/v1/wan/demo/link",
        Some(&token),
        Some(r#"{"up": false, "for": "5s"}"#),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
    // demo debounce: down after 3 s, up after 5 s
    wait_wan(&d, 6, "demo block engaged", |w| {
        w["ra_block"]["active"] == true
    });
    wait_wan(&d, 10, "demo link back and block released", |w| {
        w["up"] == true && w["ra_block"]["active"] == false
    });
    let ev = events(&d);
    assert!(
        ev.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("demo: simulated WAN link taken down")),
        "{ev:?}"
    );
    let st = d
        .guard
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exits");
    assert!(st.success());
}

#[test]
fn demo_link_is_refused_outside_the_demo() {
    let (s, d) = setup("wed", "");
    let (code, _, b) = d.request(
        "POST",
        "/api/v1/wan/demo/link",
        Some(TOKEN),
        Some(r#"{"up":false}"#),
    );
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&b));
    drop(s);
}

#[test]
fn a_dead_upstream_behind_a_live_link_counts_as_down() {
    // probes go to the ISP side, which refuses (RST: reachable) until it drops everything
    let (s, d) = setup(
        "wep",
        "probe_targets = [\"10.81.0.2:9\"]\nprobe_interval = \"300ms\"\nprobe_fail_rounds = 2\n",
    );
    let w = wait_wan(&d, 5, "probes answered", |w| {
        w["probe"] == "reachable" && w["up"] == true
    });
    assert_eq!(w["link_usable"], true);
    s.isp.nft_load(
        "table inet isp {\n chain input {\n type filter hook input priority 0;\n tcp dport 9 drop\n }\n}\n",
    );
    // two silent rounds (each up to 300 ms) + down_after 1 s
    let w = wait_wan(&d, 6, "probes failing hold the WAN down", |w| {
        w["probe"] == "unreachable" && w["up"] == false && w["ra_block"]["active"] == true
    });
    assert_eq!(w["link"]["running"], true, "the link itself stayed up");
    assert!(pirouterd_table(&s.router).is_some());
    s.isp.run(&["nft", "delete", "table", "inet", "isp"]);
    wait_wan(&d, 6, "probes answer again, WAN up after up_after", |w| {
        w["probe"] == "reachable" && w["up"] == true && w["ra_block"]["active"] == false
    });
    let ev = events(&d);
    assert!(
        ev.iter()
            .any(|e| e["source"] == "probe"
                && e["message"].as_str().unwrap().contains("unreachable")),
        "{ev:?}"
    );
}

#[test]
fn leds_bound_to_ra_block_and_wan_down_follow_the_wan() {
    let (s, d) = setup(
        "wel",
        "[gpio]\nbackend = \"sim\"\n[[led]]\nname = \"ra\"\npin = 22\nsignal = \"ra_block\"\n\
         [[led]]\nname = \"wan\"\npin = 23\nsignal = \"wan_down\"\n",
    );
    let lit = |name: &str| -> Option<bool> {
        let r = d.get_json("/api/v1/relays");
        r["leds"]
            .as_array()?
            .iter()
            .find(|l| l["name"] == name)?
            .get("lit")?
            .as_bool()
    };
    wait_wan(&d, 5, "WAN up", |w| w["up"] == true);
    let dark = wait_for(Duration::from_secs(3), || {
        (lit("ra") == Some(false) && lit("wan") == Some(false)).then_some(())
    });
    assert!(
        dark.is_some(),
        "both dark while the WAN is up: {}",
        d.get_json("/api/v1/relays")
    );
    s.isp.run(&["ip", "link", "set", "isp0", "down"]);
    let on = wait_for(Duration::from_secs(4), || {
        (lit("ra") == Some(true) && lit("wan") == Some(true)).then_some(())
    });
    assert!(
        on.is_some(),
        "both lit after down_after: {}",
        d.get_json("/api/v1/relays")
    );
    // forced off: the RA LED goes dark, the WAN LED stays lit
    assert_eq!(post_mode(&d, "off", Some(TOKEN)).0, 200);
    let split = wait_for(Duration::from_secs(3), || {
        (lit("ra") == Some(false) && lit("wan") == Some(true)).then_some(())
    });
    assert!(split.is_some(), "{}", d.get_json("/api/v1/relays"));
}
