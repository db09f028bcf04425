//! The NAT64 snapshot: everything one sampling round learned about every Jool instance, and
//! what went wrong, as an immutable value the HTTP handlers read without running `jool`.

use super::aggregate::SessionSummary;
use super::instance::InstanceStatus;
use super::session::{format_expires, Proto, Session, SessionTable};
use super::stats::Stat;
use super::tables::Pool4Entry;
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The seam between the daemon and Jool: one blocking call per sampling round.
/// `now_ms` (wall clock, Unix ms) stamps the snapshot; the source never reads the clock.
pub trait Nat64Source: Send {
    fn sample(&mut self, now_ms: u64) -> Nat64Snapshot;
}

/// What kind of problem, for programs (stable, snake_case in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The configured `jool` path does not exist.
    NotInstalled,
    /// `jool` exists but could not be started (permissions, not executable).
    CannotRun,
    /// No Jool kernel module loaded.
    ModuleNotLoaded,
    /// Only `jool_siit` is loaded; the NAT64 module `jool` is not.
    Nat64ModuleNotLoaded,
    /// The named instance does not exist in this network namespace.
    InstanceMissing,
    /// No NAT64 instance exists in this network namespace.
    NoInstances,
    /// pirouterd lacks CAP_NET_ADMIN.
    NoCapability,
    /// Client and kernel module versions do not match.
    VersionMismatch,
    /// The client is older than the module and stopped at a counter it does not know.
    ClientTooOld,
    /// `jool` ran past the timeout and was killed.
    Timeout,
    /// `jool` printed more than the configured limit.
    OutputTooLarge,
    /// `jool` died from a signal.
    Crashed,
    /// `jool` exited non-zero for a reason not recognised; its stderr is in the message.
    Failed,
    /// `jool` exited 0 but its output could not be parsed.
    BadOutput,
    /// The run was stopped because the daemon is shutting down.
    Stopped,
}

/// One thing that went wrong, ready to show: what ran, what happened, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: ProblemCode,
    /// The command line that failed, e.g. `jool -i default session display --numeric --csv --tcp`.
    pub command: String,
    /// The whole explanation, ending with what to check.
    pub message: String,
}

/// One Jool instance as seen in one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    pub name: String,
    /// From `instance display`; absent when the instance was named in the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    pub status: InstanceStatus,
    /// All three protocols' tables were read.
    pub sessions_read: bool,
    /// Counters were read, maybe only partly (see `problems`).
    pub stats_read: bool,
    #[serde(skip)]
    pub sessions: SessionTable,
    pub summary: SessionSummary,
    pub stats: Vec<Stat>,
    /// `None` when pool4 could not be read.
    pub pool4: Option<Vec<Pool4Entry>>,
    pub problems: Vec<Problem>,
}

impl InstanceSnapshot {
    /// An instance with nothing read yet.
    pub fn new(name: &str) -> Self {
        InstanceSnapshot {
            name: name.to_string(),
            namespace: None,
            framework: None,
            status: InstanceStatus::NotRead,
            sessions_read: false,
            stats_read: false,
            sessions: SessionTable::default(),
            summary: super::aggregate::summarize(&SessionTable::default(), None, 0),
            stats: Vec::new(),
            pool4: None,
            problems: Vec::new(),
        }
    }

    /// Running, and its sessions and counters were read: what `pirouterd_jool_up` reports.
    pub fn up(&self) -> bool {
        self.status.is_running() && self.sessions_read && self.stats_read
    }
}

/// Everything one round learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nat64Snapshot {
    /// Unix ms when the round started.
    pub taken_at_ms: u64,
    /// The data are recorded sample output (the demo), not this machine's Jool.
    pub sample_data: bool,
    /// Problems not tied to one instance (no `jool`, no module, no instance).
    pub problems: Vec<Problem>,
    pub instances: Vec<InstanceSnapshot>,
}

impl Nat64Snapshot {
    pub fn new(taken_at_ms: u64) -> Self {
        Nat64Snapshot {
            taken_at_ms,
            sample_data: false,
            problems: Vec::new(),
            instances: Vec::new(),
        }
    }

    /// NAT64 can be seen working: at least one instance, every instance up, no overall problem.
    /// A problem that does not stop the reading (an old client's partial counters) leaves this
    /// true; [`Nat64Snapshot::reason`] still reports it.
    pub fn up(&self) -> bool {
        self.problems.is_empty()
            && !self.instances.is_empty()
            && self.instances.iter().all(|i| i.up())
    }

    /// Every problem, overall ones first, each with the instance it concerns.
    pub fn all_problems(&self) -> impl Iterator<Item = (Option<&str>, &Problem)> {
        self.problems.iter().map(|p| (None, p)).chain(
            self.instances
                .iter()
                .flat_map(|i| i.problems.iter().map(move |p| (Some(i.name.as_str()), p))),
        )
    }

    /// The one line a component status shows: `None` when all is well.
    pub fn reason(&self) -> Option<String> {
        let (inst, p) = self.all_problems().next()?;
        let more = self.all_problems().count() - 1;
        let mut s = match inst {
            Some(i) => format!("instance {i}: {}", p.message),
            None => p.message.clone(),
        };
        if more > 0 {
            s.push_str(&format!(" (and {more} more problem(s))"));
        }
        Some(s)
    }

    /// Sessions matching `filter`, paged. Reads the stored table only.
    pub fn sessions(&self, filter: &SessionFilter) -> SessionPage {
        let mut matched = 0usize;
        let mut out = Vec::new();
        for inst in &self.instances {
            if filter.instance.as_deref().is_some_and(|n| n != inst.name) {
                continue;
            }
            for s in &inst.sessions.sessions {
                if !filter.matches(s) {
                    continue;
                }
                if matched >= filter.offset && out.len() < filter.limit {
                    out.push(SessionView::new(&inst.name, &inst.sessions, s));
                }
                matched += 1;
            }
        }
        SessionPage {
            total: matched,
            offset: filter.offset,
            limit: filter.limit,
            sessions: out,
        }
    }
}

/// Which sessions an API request wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFilter {
    pub instance: Option<String>,
    pub proto: Option<Proto>,
    /// IPv6 client address or prefix: (network, prefix length).
    pub client: Option<(u128, u8)>,
    pub limit: usize,
    pub offset: usize,
}

impl Default for SessionFilter {
    fn default() -> Self {
        SessionFilter {
            instance: None,
            proto: None,
            client: None,
            limit: 100,
            offset: 0,
        }
    }
}

impl SessionFilter {
    fn matches(&self, s: &Session) -> bool {
        if self.proto.is_some_and(|p| p != s.proto) {
            return false;
        }
        match self.client {
            Some((net, len)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len.min(128)))
                };
                s.v6_remote & mask == net & mask
            }
            None => true,
        }
    }

    /// Reads `2001:db8::1` or `2001:db8::/64` as a client filter.
    pub fn parse_client(text: &str) -> Option<(u128, u8)> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok().filter(|&l| l <= 128)?),
            None => (text, 128),
        };
        Some((u128::from(addr.parse::<Ipv6Addr>().ok()?), len))
    }
}

/// One page of the session table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionPage {
    /// Sessions matching the filter, all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub sessions: Vec<SessionView>,
}

/// A session as the API shows it: addresses as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub instance: String,
    pub proto: Proto,
    pub ipv6_client: String,
    pub ipv6_client_id: u16,
    pub ipv6_server: String,
    pub ipv6_server_id: u16,
    pub ipv4_local: String,
    pub ipv4_local_id: u16,
    pub ipv4_server: String,
    pub ipv4_server_id: u16,
    pub expires_in_ms: u64,
    pub expires_in: String,
    pub state: Option<String>,
}

impl SessionView {
    pub fn new(instance: &str, table: &SessionTable, s: &Session) -> Self {
        let state = table.state_name(s.state);
        SessionView {
            instance: instance.to_string(),
            proto: s.proto,
            ipv6_client: Ipv6Addr::from(s.v6_remote).to_string(),
            ipv6_client_id: s.v6_remote_id,
            ipv6_server: Ipv6Addr::from(s.v6_local).to_string(),
            ipv6_server_id: s.v6_local_id,
            ipv4_local: Ipv4Addr::from(s.v4_local).to_string(),
            ipv4_local_id: s.v4_local_id,
            ipv4_server: Ipv4Addr::from(s.v4_remote).to_string(),
            ipv4_server_id: s.v4_remote_id,
            expires_in_ms: s.expires_ms,
            expires_in: format_expires(s.expires_ms),
            state: (!state.is_empty()).then(|| state.to_string()),
        }
    }
}
