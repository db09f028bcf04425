//! pirouterd: firewall, NAT64, WAN and relay dashboard for Raspberry Pi routers.
//!
//! Module map. Pure logic (parsing, rendering, aggregation, state machines, rate math) lives
//! apart from the OS; only `sys` touches the kernel, processes, GPIO, files, signals and the
//! clock.
//!
//! - `config`: the typed TOML config; `check-config` reports every problem with its line.
//! - `drops`: dropped traffic (pure): kernel log-line and NFLOG record decoding, windowed
//!   top-N in bounded memory (Space-Saving), and `pirouterd analyze`. Its socket is
//!   `sys::nflog`.
//! - `duration`: human durations (`"5s"`, `"45m"`) as the config and API write them.
//! - `firewall`: the nftables snapshot as people read it (tables, chains, rules with counters
//!   and nft-syntax text, sets, named counters and quotas), rule rendering and nfprom comment
//!   labels; pure, behind the `RulesetSource` trait. Its kernel side is `sys::nft` (netlink
//!   dumps per chain, streaming decoder, set elements, change events). Firewall insight
//!   learns from successive snapshots: rule identity across reloads, rates and sparklines,
//!   hot and never-hit rules, persisted first-seen and last-hit times, the `pirouterd_nft_*`
//!   metrics; managed-set changes go through `sys::nft_sets`.
//! - `app`: the shared state HTTP handlers read: published snapshots, component health, the
//!   event log, LED signals. Handlers never touch the OS.
//! - `http`: a pure `route()` from request to response, the HTTP/1.1 server around it
//!   (listeners, workers, limits), and the Prometheus text writer.
//! - `daemon`: the lifecycle: start areas and HTTP, systemd notify and watchdog, clean stop.
//! - `demo`: `pirouterd demo`, the whole product in private namespaces with sample traffic.
//! - `status`: `pirouterd status`, a terminal summary fetched from a running daemon.
//! - `logging`: stderr logs in a form journald shows well.
//! - `relays`: relays, switches and status LEDs. Pure state machines (`(state, event, now) ->
//!   plan`) plus the controller that applies plans, serialises changes per relay, persists
//!   them and records their source. Reaches pins only through `sys::gpio::PinBank`.
//! - `sys`: the OS seams: clock, crash-safe state files, namespaces, signals, systemd notify,
//!   and (per area) netlink, the `jool` process (`sys::jool`: runs the client, one at a time,
//!   with a deadline), GPIO, link events.
//! - `nat64`: Jool NAT64 state from the `jool` command's CSV (pure): parsers for every format
//!   the client prints, the compact session table, aggregation (by protocol and state, busiest
//!   clients, BIB, pool4 use), the snapshot and the `Nat64Source` seam. `sys::jool` runs the
//!   command.
//! - `wan`: WAN watch and RA blocking, pure: link readings, the debounced WAN state machine
//!   (hysteresis, flap damping, probes), RA block mode, the `table inet pirouterd` change as a
//!   value. Its kernel halves are `sys::link` (rtnetlink) and `sys::ra_block` (nftables).

pub mod app;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod drops;
pub mod duration;
pub mod firewall;
pub mod http;
pub mod logging;
pub mod nat64;
pub mod relays;
pub mod status;
pub mod sys;
pub mod wan;
