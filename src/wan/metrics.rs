//! The WAN area's Prometheus families (`http::route::AREA_METRICS`).

use crate::app::App;
use crate::http::metrics::{Kind, MetricsWriter};

/// Renders `pirouterd_wan_up`, `pirouterd_ra_block_active` and friends from the published
/// status. Nothing is written while WAN watch is off (no interface configured).
pub fn render(app: &App, w: &mut MetricsWriter) {
    let s = app.wan.status.get();
    let Some(iface) = s.interface.as_deref() else {
        return;
    };
    let l = [("interface", iface)];
    w.family(
        "pirouterd_wan_up",
        Kind::Gauge,
        "1 while the WAN is up (debounced), 0 while down or not known yet",
    );
    w.sample(
        "pirouterd_wan_up",
        &l,
        f64::from(u8::from(s.up == Some(true))),
    );
    w.family(
        "pirouterd_wan_link_usable",
        Kind::Gauge,
        "1 while the kernel says the WAN link is usable (undebounced: IFF_UP and IFF_RUNNING)",
    );
    w.sample(
        "pirouterd_wan_link_usable",
        &l,
        f64::from(u8::from(s.link_usable == Some(true))),
    );
    w.family(
        "pirouterd_wan_flaps_total",
        Kind::Counter,
        "Debounced WAN up-to-down transitions since pirouterd started",
    );
    w.sample("pirouterd_wan_flaps_total", &l, s.flaps as f64);
    w.family(
        "pirouterd_wan_damped",
        Kind::Gauge,
        "1 while flap damping holds the WAN down",
    );
    w.sample("pirouterd_wan_damped", &l, f64::from(u8::from(s.damped)));
    w.family(
        "pirouterd_ra_block_active",
        Kind::Gauge,
        "1 while outgoing IPv6 router advertisements are dropped (table inet pirouterd)",
    );
    w.sample(
        "pirouterd_ra_block_active",
        &[],
        f64::from(u8::from(s.ra_block.active)),
    );
    w.family(
        "pirouterd_ra_block_mode",
        Kind::Gauge,
        "1 for the RA block mode in force (auto follows the WAN; on and off are forced)",
    );
    for mode in ["auto", "on", "off"] {
        w.sample(
            "pirouterd_ra_block_mode",
            &[("mode", mode)],
            f64::from(u8::from(s.ra_block.mode == mode)),
        );
    }
    w.family(
        "pirouterd_ra_block_dropped_packets_total",
        Kind::Counter,
        "Router advertisements the block has dropped since pirouterd started",
    );
    w.sample(
        "pirouterd_ra_block_dropped_packets_total",
        &[],
        s.ra_block.dropped_packets as f64,
    );
}
