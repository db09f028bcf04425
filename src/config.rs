//! The typed configuration, read from one TOML file (`/etc/pirouterd/pirouterd.toml`).
//!
//! Loading walks the parsed document with its spans instead of deserialising blindly, so
//! `pirouterd check-config` can report *every* problem with its line and the fix, not just the
//! first. Every key has a default; an empty file is a valid config (the daemon then listens on
//! 127.0.0.1:9880, reads nftables, and has no relays).
//!
//! Adding a key: add the field (documented with unit and default) to its section struct, read
//! it in that section's `read_*` function with one of the `Walker` helpers, then document it in
//! `systemd/pirouterd.toml` and the README.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::duration;

/// Default config path.
pub const DEFAULT_PATH: &str = "/etc/pirouterd/pirouterd.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[http]`: listeners and access control.
    pub http: HttpConfig,
    /// `[state]`: where small state files live.
    pub state: StateConfig,
    /// `[firewall]`: nftables sampling and managed sets.
    pub firewall: FirewallConfig,
    /// `[nat64]`: the Jool source.
    pub nat64: Nat64Config,
    /// `[drops]`: NFLOG groups to listen on.
    pub drops: DropsConfig,
    /// `[wan]`: WAN watch and RA block.
    pub wan: WanConfig,
    /// `[gpio]`: which GPIO backend drives relays and LEDs.
    pub gpio: GpioConfig,
    /// `[[relay]]` entries, in file order.
    pub relays: Vec<RelayConfig>,
    /// `[[led]]` entries, in file order.
    pub leds: Vec<LedConfig>,
}

/// Where the HTTP server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address, IPv4 or IPv6 (`"192.168.1.1:9880"`, `"[::1]:9880"`).
    Tcp(SocketAddr),
    /// A unix socket path (`"unix:/run/pirouterd/http.sock"`).
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("unix socket path must be absolute: {s:?}"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
            format!(
                "bad listen address {s:?}: write IP:PORT (\"192.168.1.1:9880\", \"[::1]:9880\") \
                 or unix:/absolute/path"
            )
        })
    }
}

/// `[http]`
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Listen addresses. Default `["127.0.0.1:9880"]`.
    pub listen: Vec<ListenAddr>,
    /// File holding the bearer token for changes. Default: none (changes refused).
    pub token_file: Option<PathBuf>,
    /// Whether reads (API, metrics) need the token too. Default `false`.
    pub read_requires_token: bool,
    /// Worker threads answering requests. Default 4.
    pub workers: usize,
    /// Largest request body accepted, bytes. Default 65536.
    pub max_body: usize,
    /// Idle or slow clients are dropped after this long without a byte. Default `"10s"`.
    pub client_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 9880)))],
            token_file: None,
            read_requires_token: false,
            workers: 4,
            max_body: 64 * 1024,
            client_timeout: Duration::from_secs(10),
        }
    }
}

/// `[state]`
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Directory for state files. Default `/var/lib/pirouterd`.
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("/var/lib/pirouterd"),
        }
    }
}

/// A set named as `family/table/set`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetRef {
    /// nftables family: ip, ip6, inet, arp, bridge, netdev.
    pub family: String,
    /// Table name.
    pub table: String,
    /// Set name.
    pub set: String,
}

impl fmt::Display for SetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.family, self.table, self.set)
    }
}

/// nftables families, as written in `nft` syntax.
pub const FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

impl std::str::FromStr for SetRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [family, table, set]
                if FAMILIES.contains(family) && !table.is_empty() && !set.is_empty() =>
            {
                Ok(SetRef { family: family.to_string(), table: table.to_string(), set: set.to_string() })
            }
            _ => Err(format!(
                "bad set {s:?}: write family/table/set, e.g. \"inet/fw/blocklist\" (family one of {})",
                FAMILIES.join(", ")
            )),
        }
    }
}

/// `[firewall]`
#[derive(Debug, Clone)]
pub struct FirewallConfig {
    /// Sampling interval. Default `"5s"`; ruleset-change events refresh earlier.
    pub interval: Duration,
    /// Sets whose elements the API may add and remove. Default: none.
    pub managed_sets: Vec<SetRef>,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            interval: Duration::from_secs(5),
            managed_sets: Vec::new(),
        }
    }
}

/// `[nat64]`
#[derive(Debug, Clone)]
pub struct Nat64Config {
    /// Whether to sample Jool at all. Default `true` (a missing `jool` shows as degraded).
    pub enabled: bool,
    /// The `jool` command. Default `/usr/bin/jool`.
    pub jool: PathBuf,
    /// Instances to read; empty means every NAT64 instance `jool instance display` lists.
    pub instances: Vec<String>,
    /// Sampling interval. Default `"10s"`.
    pub interval: Duration,
    /// A `jool` run taking longer is killed. Default `"5s"`.
    pub timeout: Duration,
}

impl Default for Nat64Config {
    fn default() -> Self {
        Nat64Config {
            enabled: true,
            jool: PathBuf::from("/usr/bin/jool"),
            instances: Vec::new(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

/// `[drops]`
#[derive(Debug, Clone, Default)]
pub struct DropsConfig {
    /// NFLOG groups to bind (`log group N` in the ruleset). Default: none.
    pub nflog_groups: Vec<u16>,
}

/// RA block mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RaBlockMode {
    /// Block while the WAN is down.
    #[default]
    Auto,
    /// Always block.
    On,
    /// Never block.
    Off,
}

impl RaBlockMode {
    /// The config/API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RaBlockMode::Auto => "auto",
            RaBlockMode::On => "on",
            RaBlockMode::Off => "off",
        }
    }
}

impl std::str::FromStr for RaBlockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(RaBlockMode::Auto),
            "on" => Ok(RaBlockMode::On),
            "off" => Ok(RaBlockMode::Off),
            _ => Err(format!(
                "bad ra_block mode {s:?}: use \"auto\", \"on\" or \"off\""
            )),
        }
    }
}

/// `[wan]`
#[derive(Debug, Clone)]
pub struct WanConfig {
    /// The WAN interface name. Default: none (WAN watch off).
    pub interface: Option<String>,
    /// The link must be down this long before it counts as down. Default `"10s"`.
    pub down_after: Duration,
    /// The link must be up this long before it counts as up. Default `"30s"`.
    pub up_after: Duration,
    /// RA block mode. Default `auto`.
    pub ra_block: RaBlockMode,
    /// LAN interfaces that get one router-lifetime-0 RA when the block engages. Default: none.
    pub lan_interfaces: Vec<String>,
    /// Also require a default route through the interface that is not flagged `linkdown`.
    /// Default `false`.
    pub require_default_route: bool,
    /// Flap damping half-life: repeated debounced drops hold the WAN down (block on) until
    /// their penalty halves away. `"0s"` turns damping off. Default `"5m"`.
    pub flap_half_life: Duration,
    /// Packet mark (`SO_MARK`) that lets the final RA pass the block. Default `0x5241`.
    pub ra_mark: u32,
    /// Reachability probes (`"IP:PORT"`, TCP connect; a refusal counts as an answer): when
    /// every target fails `probe_fail_rounds` rounds in a row the WAN counts as unusable even
    /// though the link is up. Default: none.
    pub probe_targets: Vec<std::net::SocketAddr>,
    /// Time between probe rounds (also each probe's timeout, at most 5 s). Default `"10s"`.
    pub probe_interval: Duration,
    /// Rounds in a row in which every target must fail. Default `3`.
    pub probe_fail_rounds: u32,
}

/// A probe target as the config writes it (`"192.0.2.1:53"`, `"[2001:db8::1]:443"`).
struct ProbeAddr(std::net::SocketAddr);

impl std::str::FromStr for ProbeAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(ProbeAddr).map_err(|_| {
            format!("bad probe target {s:?}: write IP:PORT, e.g. \"192.0.2.1:53\" or \"[2001:db8::1]:443\"")
        })
    }
}

impl Default for WanConfig {
    fn default() -> Self {
        WanConfig {
            interface: None,
            down_after: Duration::from_secs(10),
            up_after: Duration::from_secs(30),
            ra_block: RaBlockMode::Auto,
            lan_interfaces: Vec::new(),
            require_default_route: false,
            flap_half_life: Duration::from_secs(300),
            ra_mark: 0x5241,
            probe_targets: Vec::new(),
            probe_interval: Duration::from_secs(10),
            probe_fail_rounds: 3,
        }
    }
}

/// GPIO backend choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpioBackendKind {
    /// cdev where `/dev/gpiochip*` exist, else rppal.
    #[default]
    Auto,
    /// The kernel's GPIO character device (gpiocdev).
    Cdev,
    /// rppal's register interface.
    Rppal,
    /// Simulated pins (off a Pi, demo, tests).
    Sim,
}

impl std::str::FromStr for GpioBackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(GpioBackendKind::Auto),
            "cdev" => Ok(GpioBackendKind::Cdev),
            "rppal" => Ok(GpioBackendKind::Rppal),
            "sim" => Ok(GpioBackendKind::Sim),
            _ => Err(format!(
                "bad gpio backend {s:?}: use \"auto\", \"cdev\", \"rppal\" or \"sim\""
            )),
        }
    }
}

/// `[gpio]`
#[derive(Debug, Clone, Default)]
pub struct GpioConfig {
    /// Backend. Default `auto`.
    pub backend: GpioBackendKind,
}

/// How a relay is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Drive {
    /// The pin holds the relay on or off.
    #[default]
    Level,
    /// The relay is pressed for `pulse` like a push button; state is read from `sense_pin`.
    Pulse,
}

/// A relay's state when the daemon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AtStart {
    /// Off (the safe default).
    #[default]
    Off,
    /// On.
    On,
    /// As it was when the daemon stopped (from the state file), within `max_on`.
    Restore,
}

/// What a physical switch input does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SwitchMode {
    /// A push button: each press toggles.
    #[default]
    Toggle,
    /// A maintained wall switch: the relay follows its position.
    Follow,
}

/// Input pull resistor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pull {
    /// Pull-up (switch to ground).
    #[default]
    Up,
    /// Pull-down.
    Down,
    /// No pull.
    None,
}

impl std::str::FromStr for Drive {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "level" => Ok(Drive::Level),
            "pulse" => Ok(Drive::Pulse),
            _ => Err("use \"level\" or \"pulse\"".into()),
        }
    }
}

impl std::str::FromStr for AtStart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(AtStart::Off),
            "on" => Ok(AtStart::On),
            "restore" => Ok(AtStart::Restore),
            _ => Err("use \"off\", \"on\" or \"restore\"".into()),
        }
    }
}

impl std::str::FromStr for SwitchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "toggle" => Ok(SwitchMode::Toggle),
            "follow" => Ok(SwitchMode::Follow),
            _ => Err("use \"toggle\" (push button) or \"follow\" (wall switch)".into()),
        }
    }
}

impl std::str::FromStr for Pull {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "up" => Ok(Pull::Up),
            "down" => Ok(Pull::Down),
            "none" => Ok(Pull::None),
            _ => Err("use \"up\", \"down\" or \"none\"".into()),
        }
    }
}

/// `[[relay]]`
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Unique name, used in the API path. Letters, digits, `-` and `_`.
    pub name: String,
    /// BCM pin driving the relay (0-27).
    pub pin: u8,
    /// Whether the relay turns on at a low level. Default `false`.
    pub active_low: bool,
    /// `level` or `pulse`. Default `level`.
    pub drive: Drive,
    /// Pulse length for `pulse` drive. Default `"100ms"`.
    pub pulse: Duration,
    /// BCM pin reading the appliance's real state (pulse drive). Default: none.
    pub sense_pin: Option<u8>,
    /// Whether the sense input reads high when the appliance is off. Default `false`.
    pub sense_active_low: bool,
    /// Pull resistor on the sense input. Default `none`.
    pub sense_pull: Pull,
    /// How long after a pulse the sense pin is read, and how long a change on it must hold to
    /// count (the appliance's reaction time). Default `"1s"`.
    pub sense_delay: Duration,
    /// Automatic off after this long on. Default: none.
    pub max_on: Option<Duration>,
    /// Refuse turning on until it has been off this long. Default: none.
    pub min_off: Option<Duration>,
    /// State at start. Default `off`.
    pub at_start: AtStart,
    /// BCM pin of a physical switch. Default: none.
    pub switch_pin: Option<u8>,
    /// `toggle` (push button) or `follow` (wall switch). Default `toggle`.
    pub switch_mode: SwitchMode,
    /// Pull resistor on the switch input. Default `up`.
    pub switch_pull: Pull,
    /// Switch debounce. Default `"50ms"`.
    pub switch_debounce: Duration,
}

/// What an LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedSignal {
    /// The RA block is active.
    RaBlock,
    /// The WAN is down.
    WanDown,
    /// NAT64 is not working.
    Nat64Down,
    /// Blinks while the daemon runs.
    Heartbeat,
    /// Any relay is on.
    AnyRelayOn,
}

impl std::str::FromStr for LedSignal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ra_block" => Ok(LedSignal::RaBlock),
            "wan_down" => Ok(LedSignal::WanDown),
            "nat64_down" => Ok(LedSignal::Nat64Down),
            "heartbeat" => Ok(LedSignal::Heartbeat),
            "any_relay_on" => Ok(LedSignal::AnyRelayOn),
            _ => Err(format!(
                "bad LED signal {s:?}: use ra_block, wan_down, nat64_down, heartbeat or any_relay_on"
            )),
        }
    }
}

/// `[[led]]`
#[derive(Debug, Clone)]
pub struct LedConfig {
    /// Unique name.
    pub name: String,
    /// BCM pin (0-27).
    pub pin: u8,
    /// What it shows.
    pub signal: LedSignal,
    /// Whether the LED lights at a low level. Default `false`.
    pub active_low: bool,
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// The key, dotted (`relay[1].pin`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems; each names its line and fix.
    #[error("config {path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text).map_err(|problems| ConfigError::Invalid {
            path: path.into(),
            problems,
        })
    }

    /// Parses and validates config text, returning every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let mut w = Walker {
            text,
            problems: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(text);
        for e in errors {
            let line = e.span().map(|s| w.line(s.start));
            w.problems.push(Problem {
                line,
                key: "(syntax)".into(),
                message: e.message().trim().to_string(),
            });
        }
        if !w.problems.is_empty() {
            return Err(w.problems);
        }
        let cfg = w.read_root(root.get_ref());
        if w.problems.is_empty() {
            Ok(cfg)
        } else {
            w.problems.sort_by_key(|p| p.line.unwrap_or(0));
            Err(w.problems)
        }
    }

    /// Checks that depend on the machine, not just the text: the token file must exist and must
    /// not be readable by other users.
    pub fn check_environment(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(p) = &self.http.token_file {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(p) {
                Err(e) => out.push(Problem {
                    line: None,
                    key: "http.token_file".into(),
                    message: format!(
                        "cannot read {}: {e}; create it with `head -c 32 /dev/urandom | base64 > {0}` \
                         and `chmod 600 {0}`",
                        p.display()
                    ),
                }),
                Ok(m) if m.permissions().mode() & 0o004 != 0 => out.push(Problem {
                    line: None,
                    key: "http.token_file".into(),
                    message: format!(
                        "{} is world-readable (mode {:o}): anyone on the router could change relays \
                         and sets; run `chmod 600 {0}`",
                        p.display(),
                        m.permissions().mode() & 0o777
                    ),
                }),
                Ok(_) => {}
            }
        }
        out
    }
}

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Walks the spanned document, collecting problems instead of stopping at the first.
struct Walker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Walker<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn problem(&mut self, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) {
        let line = Some(self.line(span.start));
        self.problems.push(Problem {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Reports keys of `table` that are not in `known`.
    fn unknown_keys(&mut self, table: &Table<'_>, prefix: &str, known: &[&str]) {
        for (k, _) in table.iter() {
            let name: &str = k.get_ref();
            if !known.contains(&name) {
                let hint = closest(name, known)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("; known keys: {}", known.join(", ")));
                self.problem(k.span(), &join(prefix, name), format!("unknown key{hint}"));
            }
        }
    }

    fn get<'a, 'i>(table: &'a Table<'i>, key: &str) -> Option<&'a Value<'i>> {
        table
            .iter()
            .find(|(k, _)| {
                let s: &str = k.get_ref();
                s == key
            })
            .map(|(_, v)| v)
    }

    fn string(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        key: &str,
    ) -> Option<(String, std::ops::Range<usize>)> {
        let v = Self::get(t, key)?;
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span())),
            None => {
                self.problem(
                    v.span(),
                    &join(prefix, key),
                    format!("expected a string, found {}", v.get_ref().type_str()),
                );
                None
            }
        }
    }

    /// A string parsed with `FromStr`, whose error is the message.
    /// Like [`Walker::parsed`], with a default when the key is absent; `None` only when the
    /// value is there but wrong (the problem is recorded).
    fn parsed_or<T: std::str::FromStr<Err = String>>(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        key: &str,
        default: T,
    ) -> Option<T> {
        if Self::get(t, key).is_none() {
            return Some(default);
        }
        self.parsed(t, prefix, key)
    }

    fn parsed<T: std::str::FromStr<Err = String>>(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        key: &str,
    ) -> Option<T> {
        let (s, span) = self.string(t, prefix, key)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(m) => {
                self.problem(span, &join(prefix, key), m);
                None
            }
        }
    }

    fn bool(&mut self, t: &Table<'_>, prefix: &str, key: &str) -> Option<bool> {
        let v = Self::get(t, key)?;
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.problem(v.span(), &join(prefix, key), "expected true or false");
                None
            }
        }
    }

    fn int(&mut self, t: &Table<'_>, prefix: &str, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = Self::get(t, key)?;
        let parsed = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok());
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.problem(
                    v.span(),
                    &join(prefix, key),
                    format!("{n} is out of range: use {min} to {max}"),
                );
                None
            }
            None => {
                self.problem(
                    v.span(),
                    &join(prefix, key),
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn duration(&mut self, t: &Table<'_>, prefix: &str, key: &str) -> Option<Duration> {
        let (s, span) = self.string(t, prefix, key)?;
        match duration::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(span, &join(prefix, key), e.to_string());
                None
            }
        }
    }

    /// An array whose items are read by `item`; a non-array is a problem.
    fn array<T>(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        key: &str,
        mut item: impl FnMut(&mut Self, &Value<'_>, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = Self::get(t, key)?;
        let Some(arr) = v.get_ref().as_array() else {
            self.problem(
                v.span(),
                &join(prefix, key),
                format!("expected an array, found {}", v.get_ref().type_str()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, e) in arr.iter().enumerate() {
            if let Some(x) = item(self, e, &format!("{}[{i}]", join(prefix, key))) {
                out.push(x);
            }
        }
        Some(out)
    }

    fn str_item<T: std::str::FromStr<Err = String>>(
        &mut self,
        v: &Value<'_>,
        key: &str,
    ) -> Option<T> {
        match v.get_ref().as_str() {
            Some(s) => match s.parse() {
                Ok(x) => Some(x),
                Err(m) => {
                    self.problem(v.span(), key, m);
                    None
                }
            },
            None => {
                self.problem(
                    v.span(),
                    key,
                    format!("expected a string, found {}", v.get_ref().type_str()),
                );
                None
            }
        }
    }

    /// The sub-table `key` of `t`, or an empty one; a non-table is a problem.
    fn section<'a, 'i>(&mut self, t: &'a Table<'i>, key: &str) -> Option<&'a Table<'i>> {
        let v = Self::get(t, key)?;
        match v.get_ref().as_table() {
            Some(tab) => Some(tab),
            None => {
                self.problem(
                    v.span(),
                    key,
                    format!("expected a table [{key}], found {}", v.get_ref().type_str()),
                );
                None
            }
        }
    }

    fn read_root(&mut self, root: &Table<'_>) -> Config {
        self.unknown_keys(
            root,
            "",
            &[
                "http", "state", "firewall", "nat64", "drops", "wan", "gpio", "relay", "led",
            ],
        );
        let mut c = Config::default();
        if let Some(t) = self.section(root, "http") {
            self.read_http(t, &mut c.http);
        }
        if let Some(t) = self.section(root, "state") {
            self.unknown_keys(t, "state", &["dir"]);
            if let Some((d, span)) = self.string(t, "state", "dir") {
                if d.starts_with('/') {
                    c.state.dir = PathBuf::from(d);
                } else {
                    self.problem(
                        span,
                        "state.dir",
                        "must be an absolute path, e.g. \"/var/lib/pirouterd\"",
                    );
                }
            }
        }
        if let Some(t) = self.section(root, "firewall") {
            self.unknown_keys(t, "firewall", &["interval", "managed_sets"]);
            set_if(
                &mut c.firewall.interval,
                self.duration(t, "firewall", "interval"),
            );
            set_if(
                &mut c.firewall.managed_sets,
                self.array(t, "firewall", "managed_sets", Self::str_item),
            );
        }
        if let Some(t) = self.section(root, "nat64") {
            let p = "nat64";
            self.unknown_keys(
                t,
                p,
                &["enabled", "jool", "instances", "interval", "timeout"],
            );
            set_if(&mut c.nat64.enabled, self.bool(t, p, "enabled"));
            set_if(
                &mut c.nat64.jool,
                self.string(t, p, "jool").map(|(s, _)| PathBuf::from(s)),
            );
            set_if(
                &mut c.nat64.instances,
                self.array(t, p, "instances", |w, v, k| w.instance_name(v, k)),
            );
            set_if(&mut c.nat64.interval, self.duration(t, p, "interval"));
            set_if(&mut c.nat64.timeout, self.duration(t, p, "timeout"));
        }
        if let Some(t) = self.section(root, "drops") {
            self.unknown_keys(t, "drops", &["nflog_groups"]);
            set_if(
                &mut c.drops.nflog_groups,
                self.array(t, "drops", "nflog_groups", |w, v, k| {
                    w.int_item(v, k, 0, 65535).map(|n| n as u16)
                }),
            );
        }
        if let Some(t) = self.section(root, "wan") {
            let p = "wan";
            self.unknown_keys(
                t,
                p,
                &[
                    "interface",
                    "down_after",
                    "up_after",
                    "ra_block",
                    "lan_interfaces",
                    "require_default_route",
                    "flap_half_life",
                    "ra_mark",
                    "probe_targets",
                    "probe_interval",
                    "probe_fail_rounds",
                ],
            );
            if let Some((s, span)) = self.string(t, p, "interface") {
                if valid_ifname(&s) {
                    c.wan.interface = Some(s);
                } else {
                    self.problem(span, "wan.interface", IFNAME_HINT);
                }
            }
            set_if(&mut c.wan.down_after, self.duration(t, p, "down_after"));
            set_if(&mut c.wan.up_after, self.duration(t, p, "up_after"));
            set_if(&mut c.wan.ra_block, self.parsed(t, p, "ra_block"));
            set_if(
                &mut c.wan.lan_interfaces,
                self.array(t, p, "lan_interfaces", |w, v, k| w.ifname_item(v, k)),
            );
            set_if(
                &mut c.wan.require_default_route,
                self.bool(t, p, "require_default_route"),
            );
            set_if(
                &mut c.wan.flap_half_life,
                self.duration(t, p, "flap_half_life"),
            );
            set_if(
                &mut c.wan.ra_mark,
                self.int(t, p, "ra_mark", 1, i64::from(u32::MAX))
                    .map(|n| n as u32),
            );
            set_if(
                &mut c.wan.probe_targets,
                self.array(t, p, "probe_targets", |w, v, k| {
                    w.str_item::<ProbeAddr>(v, k).map(|a| a.0)
                }),
            );
            set_if(
                &mut c.wan.probe_interval,
                self.duration(t, p, "probe_interval"),
            );
            set_if(
                &mut c.wan.probe_fail_rounds,
                self.int(t, p, "probe_fail_rounds", 1, 100)
                    .map(|n| n as u32),
            );
        }
        if let Some(t) = self.section(root, "gpio") {
            self.unknown_keys(t, "gpio", &["backend"]);
            set_if(&mut c.gpio.backend, self.parsed(t, "gpio", "backend"));
        }
        let mut pins: Vec<(u8, String, std::ops::Range<usize>)> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, (t, span)) in self.tables_array(root, "relay").into_iter().enumerate() {
            if let Some(r) = self.read_relay(
                t,
                &format!("relay[{i}]"),
                span.clone(),
                &mut pins,
                &mut names,
            ) {
                c.relays.push(r);
            }
        }
        let mut led_names: Vec<String> = Vec::new();
        for (i, (t, span)) in self.tables_array(root, "led").into_iter().enumerate() {
            if let Some(l) = self.read_led(t, &format!("led[{i}]"), span, &mut pins, &mut led_names)
            {
                c.leds.push(l);
            }
        }
        c
    }

    fn tables_array<'a, 'i>(
        &mut self,
        root: &'a Table<'i>,
        key: &str,
    ) -> Vec<(&'a Table<'i>, std::ops::Range<usize>)> {
        let Some(v) = Self::get(root, key) else {
            return Vec::new();
        };
        let Some(arr) = v.get_ref().as_array() else {
            self.problem(v.span(), key, format!("expected [[{key}]] tables"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in arr.iter() {
            match e.get_ref().as_table() {
                Some(t) => out.push((t, e.span())),
                None => self.problem(e.span(), key, format!("expected [[{key}]] tables")),
            }
        }
        out
    }

    fn read_http(&mut self, t: &Table<'_>, h: &mut HttpConfig) {
        let p = "http";
        self.unknown_keys(
            t,
            p,
            &[
                "listen",
                "token_file",
                "read_requires_token",
                "workers",
                "max_body",
                "client_timeout",
            ],
        );
        if let Some(list) = self.array(t, p, "listen", Self::str_item) {
            let raw_empty = Self::get(t, "listen")
                .and_then(|v| v.get_ref().as_array().map(|a| (a.is_empty(), v.span())));
            if let Some((true, span)) = raw_empty {
                self.problem(
                    span,
                    "http.listen",
                    "needs at least one address, e.g. [\"127.0.0.1:9880\"]",
                );
            } else if !list.is_empty() {
                h.listen = list;
            }
        }
        if let Some((s, span)) = self.string(t, p, "token_file") {
            if s.starts_with('/') {
                h.token_file = Some(PathBuf::from(s));
            } else {
                self.problem(
                    span,
                    "http.token_file",
                    "must be an absolute path, e.g. \"/etc/pirouterd/token\"",
                );
            }
        }
        set_if(
            &mut h.read_requires_token,
            self.bool(t, p, "read_requires_token"),
        );
        set_if(
            &mut h.workers,
            self.int(t, p, "workers", 1, 64).map(|n| n as usize),
        );
        set_if(
            &mut h.max_body,
            self.int(t, p, "max_body", 1024, 16 << 20)
                .map(|n| n as usize),
        );
        set_if(&mut h.client_timeout, self.duration(t, p, "client_timeout"));
    }

    fn int_item(&mut self, v: &Value<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let n = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok());
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(
                    v.span(),
                    key,
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn ifname_item(&mut self, v: &Value<'_>, key: &str) -> Option<String> {
        match v.get_ref().as_str() {
            Some(s) if valid_ifname(s) => Some(s.to_string()),
            _ => {
                self.problem(v.span(), key, IFNAME_HINT);
                None
            }
        }
    }

    fn instance_name(&mut self, v: &Value<'_>, key: &str) -> Option<String> {
        match v.get_ref().as_str() {
            Some(s) if !s.is_empty() && s.len() <= 15 && s.is_ascii() => Some(s.to_string()),
            _ => {
                self.problem(
                    v.span(),
                    key,
                    "a Jool instance name is 1 to 15 ASCII characters",
                );
                None
            }
        }
    }

    /// Reads a BCM pin and checks it is used once across relays and LEDs.
    fn pin(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        key: &str,
        pins: &mut Vec<(u8, String, std::ops::Range<usize>)>,
    ) -> Option<u8> {
        let span = Self::get(t, key)?.span();
        let pin = self.int(t, prefix, key, 0, 27)? as u8;
        let who = join(prefix, key);
        if let Some((_, other, _)) = pins.iter().find(|(p, _, _)| *p == pin) {
            let msg = format!("GPIO {pin} is already used by {other}: every relay, sense, switch and LED needs its own pin");
            self.problem(span.clone(), &who, msg);
        } else {
            pins.push((pin, who, span));
        }
        Some(pin)
    }

    fn name(
        &mut self,
        t: &Table<'_>,
        prefix: &str,
        span: std::ops::Range<usize>,
        names: &mut Vec<String>,
    ) -> Option<String> {
        let Some((name, nspan)) = self.string(t, prefix, "name") else {
            self.problem(
                span,
                &join(prefix, "name"),
                "every entry needs a name, e.g. name = \"fireplace\"",
            );
            return None;
        };
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            self.problem(
                nspan,
                &join(prefix, "name"),
                "use 1 to 32 letters, digits, '-' or '_' (it becomes part of a URL)",
            );
            return None;
        }
        if names.contains(&name) {
            self.problem(
                nspan,
                &join(prefix, "name"),
                format!("duplicate name {name:?}: names must be unique"),
            );
            return None;
        }
        names.push(name.clone());
        Some(name)
    }

    fn read_relay(
        &mut self,
        t: &Table<'_>,
        p: &str,
        span: std::ops::Range<usize>,
        pins: &mut Vec<(u8, String, std::ops::Range<usize>)>,
        names: &mut Vec<String>,
    ) -> Option<RelayConfig> {
        self.unknown_keys(
            t,
            p,
            &[
                "name",
                "pin",
                "active_low",
                "drive",
                "pulse",
                "sense_pin",
                "sense_active_low",
                "sense_pull",
                "sense_delay",
                "max_on",
                "min_off",
                "at_start",
                "switch_pin",
                "switch_mode",
                "switch_pull",
                "switch_debounce",
            ],
        );
        let name = self.name(t, p, span.clone(), names);
        let pin = self.pin(t, p, "pin", pins);
        if pin.is_none() && Self::get(t, "pin").is_none() {
            self.problem(
                span.clone(),
                &join(p, "pin"),
                "every relay needs its BCM pin, e.g. pin = 17",
            );
        }
        let drive = self.parsed_or(t, p, "drive", Drive::Level);
        let at_start = self.parsed_or(t, p, "at_start", AtStart::Off);
        let switch_mode = self.parsed_or(t, p, "switch_mode", SwitchMode::Toggle);
        let switch_pull = self.parsed_or(t, p, "switch_pull", Pull::Up);
        let sense_pull = self.parsed_or(t, p, "sense_pull", Pull::None);
        let sense_pin = if Self::get(t, "sense_pin").is_some() {
            Some(self.pin(t, p, "sense_pin", pins)?)
        } else {
            None
        };
        let switch_pin = if Self::get(t, "switch_pin").is_some() {
            Some(self.pin(t, p, "switch_pin", pins)?)
        } else {
            None
        };
        let relay = RelayConfig {
            name: name?,
            pin: pin?,
            active_low: self.bool(t, p, "active_low").unwrap_or(false),
            drive: drive?,
            pulse: self
                .duration(t, p, "pulse")
                .unwrap_or(Duration::from_millis(100)),
            sense_pin,
            sense_active_low: self.bool(t, p, "sense_active_low").unwrap_or(false),
            sense_pull: sense_pull?,
            sense_delay: self
                .duration(t, p, "sense_delay")
                .unwrap_or(Duration::from_secs(1)),
            max_on: self.duration(t, p, "max_on"),
            min_off: self.duration(t, p, "min_off"),
            at_start: at_start?,
            switch_pin,
            switch_mode: switch_mode?,
            switch_pull: switch_pull?,
            switch_debounce: self
                .duration(t, p, "switch_debounce")
                .unwrap_or(Duration::from_millis(50)),
        };
        if relay.drive == Drive::Pulse && relay.sense_pin.is_none() {
            self.problem(
                span,
                &join(p, "sense_pin"),
                "drive = \"pulse\" needs sense_pin: a pulse toggles the appliance, so without \
                 reading its state back a pulse meant to turn it off could turn it on",
            );
        }
        if relay.drive == Drive::Pulse && relay.pulse > Duration::from_secs(5) {
            if let Some(v) = Self::get(t, "pulse") {
                self.problem(
                    v.span(),
                    &join(p, "pulse"),
                    "a pulse longer than 5s is not a button press: use drive = \"level\"",
                );
            }
        }
        Some(relay)
    }

    fn read_led(
        &mut self,
        t: &Table<'_>,
        p: &str,
        span: std::ops::Range<usize>,
        pins: &mut Vec<(u8, String, std::ops::Range<usize>)>,
        names: &mut Vec<String>,
    ) -> Option<LedConfig> {
        self.unknown_keys(t, p, &["name", "pin", "signal", "active_low"]);
        let name = self.name(t, p, span.clone(), names);
        let pin = self.pin(t, p, "pin", pins);
        if Self::get(t, "pin").is_none() {
            self.problem(
                span.clone(),
                &join(p, "pin"),
                "every LED needs its BCM pin, e.g. pin = 22",
            );
        }
        let signal = self.parsed(t, p, "signal");
        if Self::get(t, "signal").is_none() {
            self.problem(
                span,
                &join(p, "signal"),
                "every LED needs a signal, e.g. signal = \"ra_block\"",
            );
        }
        Some(LedConfig {
            name: name?,
            pin: pin?,
            signal: signal?,
            active_low: self.bool(t, p, "active_low").unwrap_or(false),
        })
    }
}

const IFNAME_HINT: &str =
    "an interface name is 1 to 15 characters without '/' or spaces, e.g. \"eth0\"";

fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn set_if<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The known key closest to a misspelt one (edit distance <= 2).
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_valid_with_defaults() {
        let c = Config::parse("").expect("valid");
        assert_eq!(
            c.http.listen,
            vec![ListenAddr::Tcp("127.0.0.1:9880".parse().expect("addr"))]
        );
        assert_eq!(c.firewall.interval, Duration::from_secs(5));
        assert_eq!(c.nat64.interval, Duration::from_secs(10));
        assert!(c.relays.is_empty());
    }

    #[test]
    fn design_sketch_parses() {
        let text = r#"
[http]
listen = ["192.168.1.1:9880", "unix:/run/pirouterd/http.sock", "[::1]:9880"]
token_file = "/etc/pirouterd/token"
read_requires_token = false

[state]
dir = "/var/lib/pirouterd"

[firewall]
interval = "5s"
managed_sets = ["inet/fw/blocklist", "inet/Filter/Client_SSH_IPv4"]

[nat64]
enabled = true
jool = "/usr/bin/jool"
instances = []
interval = "10s"

[drops]
nflog_groups = [1]

[wan]
interface = "wan0"
down_after = "10s"
up_after = "30s"
ra_block = "auto"

[gpio]
backend = "auto"

[[relay]]
name = "fireplace"
pin = 2
active_low = true
drive = "pulse"
pulse = "100ms"
sense_pin = 3
max_on = "4h"
min_off = "10m"
at_start = "off"
switch_pin = 17
switch_mode = "toggle"

[[led]]
name = "ra-blocked"
pin = 22
signal = "ra_block"
"#;
        let c = Config::parse(text).expect("valid");
        assert_eq!(c.http.listen.len(), 3);
        assert_eq!(
            c.http.listen[1],
            ListenAddr::Unix("/run/pirouterd/http.sock".into())
        );
        assert_eq!(c.firewall.managed_sets[1].table, "Filter");
        let r = &c.relays[0];
        assert_eq!((r.pin, r.sense_pin, r.switch_pin), (2, Some(3), Some(17)));
        assert_eq!(r.drive, Drive::Pulse);
        assert_eq!(r.max_on, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(c.leds[0].signal, LedSignal::RaBlock);
        assert_eq!(c.wan.interface.as_deref(), Some("wan0"));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text =
            "[http]\nlisten = [\"nonsense\"]\nworkrs = 3\n[firewall]\ninterval = \"5 seconds\"\n\
                    [[relay]]\nname = \"a\"\npin = 4\n[[relay]]\nname = \"a\"\npin = 4\n";
        let problems = Config::parse(text).expect_err("invalid");
        let lines: Vec<_> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (Some(2), "http.listen[0]"),
                (Some(3), "http.workrs"),
                (Some(5), "firewall.interval"),
                (Some(10), "relay[1].name"),
                (Some(11), "relay[1].pin"),
            ]
        );
        assert!(
            problems[1].message.contains("did you mean `workers`"),
            "{}",
            problems[1].message
        );
        assert!(problems[4].message.contains("already used by relay[0].pin"));
    }

    #[test]
    fn wan_keys_parse_and_bad_ones_are_named() {
        let c = Config::parse(
            "[wan]\ninterface = \"ppp0\"\nrequire_default_route = true\n\
             flap_half_life = \"0s\"\nra_mark = 0x10\nlan_interfaces = [\"br0\"]\n\
             probe_targets = [\"192.0.2.1:53\", \"[2001:db8::1]:443\"]\nprobe_fail_rounds = 2\n",
        )
        .expect("valid");
        assert!(c.wan.require_default_route);
        assert_eq!(c.wan.flap_half_life, Duration::ZERO);
        assert_eq!(c.wan.ra_mark, 16);
        assert_eq!(c.wan.lan_interfaces, vec!["br0".to_string()]);
        assert_eq!(Config::default().wan.ra_mark, 0x5241);
        assert_eq!(c.wan.probe_targets.len(), 2);
        assert_eq!(c.wan.probe_fail_rounds, 2);
        let p = Config::parse("[wan]\nprobe_targets = [\"8.8.8.8\"]\n").expect_err("no port");
        assert_eq!(p[0].key, "wan.probe_targets[0]");
        assert!(p[0].message.contains("IP:PORT"), "{}", p[0].message);
        let problems =
            Config::parse("[wan]\nra_mark = 0\nflap_half_life = \"soon\"\nra_block = \"maybe\"\n")
                .expect_err("invalid");
        let keys: Vec<_> = problems.iter().map(|p| (p.line, p.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (Some(2), "wan.ra_mark"),
                (Some(3), "wan.flap_half_life"),
                (Some(4), "wan.ra_block")
            ]
        );
    }

    #[test]
    fn syntax_errors_have_lines() {
        let problems = Config::parse("[http]\nlisten = [\n").expect_err("invalid");
        assert_eq!(problems[0].key, "(syntax)");
        assert!(problems[0].line.is_some());
    }

    #[test]
    fn relay_sense_keys_and_pulse_needs_sense() {
        let c = Config::parse(
            "[[relay]]\nname = \"f\"\npin = 2\ndrive = \"pulse\"\nsense_pin = 3\nsense_delay = \"250ms\"\nsense_pull = \"down\"\n",
        )
        .expect("valid");
        assert_eq!(c.relays[0].sense_delay, Duration::from_millis(250));
        assert_eq!(c.relays[0].sense_pull, Pull::Down);
        let d = Config::parse("[[relay]]\nname = \"p\"\npin = 2\n").expect("valid");
        assert_eq!(d.relays[0].sense_delay, Duration::from_secs(1));
        assert_eq!(d.relays[0].sense_pull, Pull::None);
        let problems = Config::parse("[[relay]]\nname = \"f\"\npin = 2\ndrive = \"pulse\"\n")
            .expect_err("pulse without sense");
        assert_eq!(problems[0].key, "relay[0].sense_pin");
        assert_eq!(problems[0].line, Some(1));
        assert!(problems[0].message.contains("needs sense_pin"));
    }

    #[test]
    fn wrong_types_are_named() {
        let problems = Config::parse("[http]\nworkers = \"four\"\nread_requires_token = 1\n")
            .expect_err("invalid");
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("whole number"));
        assert!(problems[1].message.contains("true or false"));
    }

    #[test]
    fn set_refs_and_listen_addrs_validate() {
        assert!("inet/fw/blocklist".parse::<SetRef>().is_ok());
        assert!("inet/fw".parse::<SetRef>().is_err());
        assert!("foo/fw/x".parse::<SetRef>().is_err());
        assert!("unix:relative".parse::<ListenAddr>().is_err());
        assert!("[::]:80".parse::<ListenAddr>().is_ok());
    }
}
