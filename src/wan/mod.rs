//! WAN watch and router-advertisement blocking: the pure half.
//!
//! When the WAN goes down, LAN hosts keep the IPv6 default route the router advertised and
//! their traffic black-holes. pirouterd watches the WAN link, decides (with hysteresis and
//! flap damping) whether the WAN is usable, and while it is not, drops the router's own
//! outgoing router advertisements in its own `table inet pirouterd`.
//!
//! - [`link`]: one reading of the WAN link ([`LinkSample`]) and what "usable" means.
//! - [`controller`]: [`WanController`], the debounced state machine. Time is an argument.
//! - [`probe`]: reachability-probe aggregation (all targets fail N rounds in a row).
//! - [`plan`]: [`RaBlockPlan`], the nftables change as a value whose `Display` is nft syntax.
//! - [`rtnl`]: pure parsing of rtnetlink link and route messages (`&[u8]` in, values out).
//! - [`ra`]: the router advertisement packet (the RFC 7084 final RA with lifetime 0).
//! - [`runner`]: the loop body tying a watcher, the controller and a blocker together.
//! - [`service`], [`api`], [`metrics`]: the daemon glue: the WAN thread, `/api/v1/wan`,
//!   `pirouterd_wan_up` and `pirouterd_ra_block_active`.
//!
//! The OS sits behind two blocking seams defined here: [`WanWatcher`] (link readings from
//! rtnetlink, real one in `sys::link`) and [`RaBlocker`] (the table, real one in
//! `sys::ra_block`).

pub mod api;
pub mod controller;
pub mod link;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod ra;
pub mod rtnl;
pub mod runner;
pub mod service;

pub use controller::{BlockReason, RaMode, WanController, WanEvent, WanPolicy, WanState, WanView};
pub use link::{LinkSample, OperState};
pub use plan::RaBlockPlan;
pub use probe::{ProbeAggregator, ProbeVerdict};

use std::time::Duration;

/// A source of WAN link readings (the real one reads rtnetlink events).
pub trait WanWatcher: Send {
    /// The error a reading can fail with.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Blocks up to `timeout` for the next reading. `Ok(None)` means nothing changed in time.
    /// A reading is returned whenever the kernel reports the link (event or periodic re-read),
    /// even if nothing changed: the controller ignores repeats.
    fn next_sample(&mut self, timeout: Duration) -> Result<Option<LinkSample>, Self::Error>;
}

/// Dropped router advertisements, read back from the block rule's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// The RA block in the kernel (the real one owns `table inet pirouterd`).
pub trait RaBlocker: Send {
    /// The error applying or reading the block can fail with.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Engages (`true`) or releases (`false`) the block; doing what is already done is a no-op.
    fn set_blocked(&mut self, blocked: bool) -> Result<(), Self::Error>;
    /// Whether the block is in the kernel now (as far as this blocker knows).
    fn is_blocked(&self) -> bool;
    /// Router advertisements the block has dropped since this blocker was created: the rule's
    /// counter now plus what earlier engagements counted (the counter dies with the table).
    fn dropped(&mut self) -> Result<DropCounter, Self::Error>;
}
