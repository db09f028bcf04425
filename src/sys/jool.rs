//! Runs the Jool userspace client (`jool`) and turns what it prints into a
//! [`Nat64Snapshot`]. No Jool library: the command's CSV is the interface.
//!
//! One run at a time, process-wide. Each run gets its own process group, stdin from
//! `/dev/null`, stdout and stderr read together with `poll(2)` until both close (a piped `jool`
//! block-buffers stdout, so nothing is judged before the end), a deadline after which the whole
//! group is killed, and a cap on output size. The child is always reaped, on every path: no
//! zombie, no stray grandchild.
//!
//! The exit code decides success: Jool prints the CSV header before asking the kernel, so a
//! header on stdout proves nothing. Failures are matched on the recorded stderr texts (Jool
//! 4.1.x) and mapped to a [`JoolError`] that says what to do.

use crate::nat64::instance::{parse_instances, parse_status, InstanceStatus};
use crate::nat64::snapshot::{InstanceSnapshot, Nat64Snapshot, Nat64Source, Problem, ProblemCode};
use crate::nat64::stats::parse_stats;
use crate::nat64::tables::parse_pool4;
use crate::nat64::{aggregate, ParseError, Proto, SessionTable};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a `jool` run gave no usable answer. Each message ends with what to check or do.
#[derive(Debug, thiserror::Error)]
pub enum JoolError {
    /// The configured path does not exist. Install the client (Debian, Ubuntu, Raspberry Pi
    /// OS: `apt install jool-tools`) or point `nat64.jool` at it.
    #[error("{} not found: install the Jool client (`apt install jool-tools`) or set nat64.jool to its path", path.display())]
    NotInstalled { path: PathBuf },
    /// The file exists but could not be executed (permissions, wrong architecture).
    #[error("cannot run {}: check that it is an executable the pirouterd user may run", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Waiting on or reading from the child failed (rare: resource exhaustion).
    #[error("reading the output of `{command}` failed")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The run passed its deadline and its process group was killed. A healthy `jool` answers
    /// in milliseconds; check `dmesg` for the module, or raise `nat64.timeout` for huge tables.
    #[error("`{command}` did not finish within {timeout:?} and was killed: check dmesg for the Jool module, or raise nat64.timeout")]
    Timeout { command: String, timeout: Duration },
    /// The output passed the size cap and the run was killed.
    #[error("`{command}` printed more than {limit} bytes and was stopped (the 64 MiB cap holds about 580,000 sessions): is the session table really that large?")]
    OutputTooLarge { command: String, limit: usize },
    /// The client died from a signal.
    #[error("`{command}` was killed by signal {signal}{}", stderr_tail(stderr))]
    Crashed {
        command: String,
        signal: i32,
        stderr: String,
    },
    /// No Jool module at all (the Generic Netlink family `Jool` is absent).
    #[error("no Jool kernel module is loaded: run `modprobe jool` and add `jool` to /etc/modules")]
    ModuleNotLoaded { command: String, stderr: String },
    /// `jool_siit` is loaded but the NAT64 module `jool` is not.
    #[error("the NAT64 module is not loaded (only SIIT is): run `modprobe jool` and add `jool` to /etc/modules")]
    Nat64ModuleNotLoaded { command: String, stderr: String },
    /// The instance does not exist in pirouterd's network namespace.
    #[error("Jool instance {instance:?} does not exist in this network namespace: create it (`jool instance add {instance} --netfilter --pool6 64:ff9b::/96`) or fix nat64.instances")]
    InstanceMissing {
        command: String,
        instance: String,
        stderr: String,
    },
    /// The kernel refused for lack of CAP_NET_ADMIN.
    #[error("pirouterd lacks CAP_NET_ADMIN, which Jool requires: run it with AmbientCapabilities=CAP_NET_ADMIN (the shipped unit does)")]
    NoCapability { command: String, stderr: String },
    /// The kernel module rejected the client's version.
    #[error("Jool client {client} and kernel module {module} do not match: update the {older} (e.g. jool-dkms and jool-tools from the same release)")]
    VersionMismatch {
        command: String,
        client: String,
        module: String,
        older: String,
        stderr: String,
    },
    /// A 4.1.9-4.1.11 client met a counter from a newer module and stopped there; the counters
    /// printed before it are still used.
    #[error("the Jool client is older than the kernel module and stopped at a counter it does not know: update the userspace client (jool-tools) to the module's version")]
    ClientTooOld { command: String, stderr: String },
    /// Any other non-zero exit; Jool's own message is kept.
    #[error("`{command}` failed with exit code {code}{}", stderr_tail(stderr))]
    Failed {
        command: String,
        code: i32,
        stderr: String,
    },
    /// pirouterd is stopping; the run was killed so the stop is prompt.
    #[error("`{command}` was stopped because pirouterd is shutting down")]
    Stopped { command: String },
    /// Exit 0 but the output is not what this Jool format looks like.
    #[error("`{command}` printed output pirouterd cannot read: is nat64.jool really the Jool 4.1 client?")]
    BadOutput {
        command: String,
        #[source]
        source: ParseError,
    },
}

fn stderr_tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::nat64::clip(&t.replace('\n', " ")))
    }
}

impl JoolError {
    pub fn code(&self) -> ProblemCode {
        match self {
            JoolError::NotInstalled { .. } => ProblemCode::NotInstalled,
            JoolError::Spawn { .. } | JoolError::Io { .. } => ProblemCode::CannotRun,
            JoolError::Timeout { .. } => ProblemCode::Timeout,
            JoolError::OutputTooLarge { .. } => ProblemCode::OutputTooLarge,
            JoolError::Crashed { .. } => ProblemCode::Crashed,
            JoolError::ModuleNotLoaded { .. } => ProblemCode::ModuleNotLoaded,
            JoolError::Nat64ModuleNotLoaded { .. } => ProblemCode::Nat64ModuleNotLoaded,
            JoolError::InstanceMissing { .. } => ProblemCode::InstanceMissing,
            JoolError::NoCapability { .. } => ProblemCode::NoCapability,
            JoolError::VersionMismatch { .. } => ProblemCode::VersionMismatch,
            JoolError::ClientTooOld { .. } => ProblemCode::ClientTooOld,
            JoolError::Failed { .. } => ProblemCode::Failed,
            JoolError::Stopped { .. } => ProblemCode::Stopped,
            JoolError::BadOutput { .. } => ProblemCode::BadOutput,
        }
    }

    /// The problem as the snapshot shows it: the whole error chain in one line.
    pub fn to_problem(&self, command: &str) -> Problem {
        Problem {
            code: self.code(),
            command: command.to_string(),
            message: crate::logging::error_chain(self),
        }
    }
}

/// What a finished run left: exit status and everything it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Maps an exit status and stderr to success or the error a person can act on. Pure: tested
/// against the recorded stderr files and exit codes.
pub fn classify(command: &str, instance: &str, out: &RunOutput) -> Result<(), JoolError> {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let command = command.to_string();
    let code = match (out.code, out.signal) {
        (Some(0), _) => return Ok(()),
        (Some(c), _) => c,
        (None, s) => {
            return Err(JoolError::Crashed {
                command,
                signal: s.unwrap_or(0),
                stderr,
            })
        }
    };
    // Texts from src/usr/nl/core.c and src/mod/common/nl/nl_common.c (4.1.x); codes are the
    // client's return value modulo 256 (253 = -ESRCH, 22 = EINVAL, 3 = ESRCH, 1 = EPERM,
    // 234 = -EINVAL).
    Err(if stderr.contains("socket family doesn't seem to exist") {
        JoolError::ModuleNotLoaded { command, stderr }
    } else if stderr.contains("NAT64 Jool has not been modprobed") {
        JoolError::Nat64ModuleNotLoaded { command, stderr }
    } else if stderr.contains("lacks an instance") {
        JoolError::InstanceMissing {
            command,
            instance: instance.to_string(),
            stderr,
        }
    } else if stderr.contains("CAP_NET_ADMIN") {
        JoolError::NoCapability { command, stderr }
    } else if stderr.contains("Version mismatch") {
        let (client, module, older) = versions(&stderr);
        JoolError::VersionMismatch {
            command,
            client,
            module,
            older,
            stderr,
        }
    } else if stderr.contains("unknown stat counter") {
        JoolError::ClientTooOld { command, stderr }
    } else {
        JoolError::Failed {
            command,
            code,
            stderr,
        }
    })
}

/// Pulls `A`, `B` and the older side out of Jool's "The userspace client's version is A,\nbut
/// the kernel module is B.\nPlease update the X." Unreadable parts become `?`.
fn versions(stderr: &str) -> (String, String, String) {
    let after = |key: &str| -> String {
        stderr
            .split_once(key)
            .map(|(_, rest)| {
                rest.trim_start()
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('.')
                    .to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "?".into())
    };
    let older = stderr
        .split_once("Please update the ")
        .map(|(_, r)| {
            r.lines()
                .next()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "older side".into());
    (
        after("client's version is"),
        after("kernel module is"),
        older,
    )
}

/// Answers "should a run in progress give up now?" (the daemon is stopping).
pub type Cancel = Arc<dyn Fn() -> bool + Send + Sync>;

/// Runs the configured `jool`. Process-wide, only one run is under way at any moment.
#[derive(Clone)]
pub struct JoolRunner {
    pub path: PathBuf,
    pub timeout: Duration,
    pub max_output: usize,
    /// Checked at least every 200 ms while a run is under way.
    pub cancel: Option<Cancel>,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Kills the child's process group and reaps the child when dropped, whatever path left `run`.
struct Reaper {
    child: Child,
    done: bool,
}

impl Reaper {
    fn kill_group(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH (nothing left in the group) is the normal case after a clean exit.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.done {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

enum Stop {
    Cancelled,
    Deadline,
    TooLarge,
    Io(std::io::Error),
}

impl JoolRunner {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JoolRunner {
            path: path.into(),
            timeout: Duration::from_secs(10),
            max_output: 64 << 20,
            cancel: None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c())
    }

    /// The command line as a person would type it, for messages.
    pub fn command_line(&self, args: &[&str]) -> String {
        let mut s = self.path.display().to_string();
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs `jool ARGS`, returns what it printed and how it ended. Errors only when the run
    /// itself failed (not found, not startable, timeout, too much output); a non-zero exit is
    /// returned as output for [`classify`], since stdout may still matter.
    pub fn run(&self, args: &[&str]) -> Result<RunOutput, JoolError> {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let command = self.command_line(args);
        if self.cancelled() {
            return Err(JoolError::Stopped { command });
        }
        let start = Instant::now();
        let deadline = start + self.timeout;
        let child = Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group: on timeout the whole group dies, so a grandchild holding the pipes
            // open cannot keep us waiting.
            .process_group(0)
            .env("LC_ALL", "C")
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JoolError::NotInstalled {
                    path: self.path.clone(),
                })
            }
            Err(source) => {
                return Err(JoolError::Spawn {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut reaper = Reaper { child, done: false };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let read = read_both(
            &mut reaper.child,
            &mut stdout,
            &mut stderr,
            deadline,
            self.max_output,
            &|| self.cancelled(),
        );
        if let Err(stop) = read {
            // Dropping the reaper kills the group and reaps the child.
            drop(reaper);
            return Err(match stop {
                Stop::Deadline => JoolError::Timeout {
                    command,
                    timeout: self.timeout,
                },
                Stop::TooLarge => JoolError::OutputTooLarge {
                    command,
                    limit: self.max_output,
                },
                Stop::Io(source) => JoolError::Io { command, source },
                Stop::Cancelled => JoolError::Stopped { command },
            });
        }
        // Both pipes closed: the child has exited or is about to; it may also have closed them
        // and kept running, so the deadline still holds.
        let status = loop {
            match reaper.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= deadline => {
                    drop(reaper);
                    return Err(JoolError::Timeout {
                        command,
                        timeout: self.timeout,
                    });
                }
                Ok(None) if self.cancelled() => {
                    drop(reaper);
                    return Err(JoolError::Stopped { command });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(source) => {
                    drop(reaper);
                    return Err(JoolError::Io { command, source });
                }
            }
        };
        reaper.done = true;
        // The leader is reaped; anything it left in its group goes too (the group id stays
        // reserved while members live, so this cannot hit an unrelated process).
        reaper.kill_group();
        log::debug!("{command}: exit {status} in {:?}", start.elapsed());
        Ok(RunOutput {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
        })
    }
}

/// Reads stdout and stderr together until both reach end of file.
fn read_both(
    child: &mut Child,
    stdout: &mut Vec<u8>,
    stderr: &mut Vec<u8>,
    deadline: Instant,
    limit: usize,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), Stop> {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut buf = vec![0u8; 64 << 10];
    while out.is_some() || err.is_some() {
        if cancelled() {
            return Err(Stop::Cancelled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Stop::Deadline);
        }
        // Wake at least every 200 ms to notice a stop.
        let slice = left.min(Duration::from_millis(200));
        let ms = i32::try_from(slice.as_millis().max(1)).unwrap_or(i32::MAX);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let (ready_out, ready_err) = {
            let mut fds = Vec::with_capacity(2);
            if let Some(o) = &out {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &err {
                fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Stop::Io(e.into())),
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            match (&out, &err) {
                (Some(_), Some(_)) => (ready(0), ready(1)),
                (Some(_), None) => (ready(0), false),
                _ => (false, ready(0)),
            }
        };
        if ready_out {
            if let Some(o) = out.as_mut() {
                match o.read(&mut buf) {
                    Ok(0) => out = None,
                    Ok(n) => stdout.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Stop::Io(e)),
                }
            }
        }
        if ready_err {
            if let Some(e) = err.as_mut() {
                match e.read(&mut buf) {
                    Ok(0) => err = None,
                    Ok(n) => stderr.extend_from_slice(&buf[..n]),
                    Err(x) if x.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(x) => return Err(Stop::Io(x)),
                }
            }
        }
        if stdout.len() + stderr.len() > limit {
            return Err(Stop::TooLarge);
        }
    }
    Ok(())
}

/// What the Jool source needs from the config.
#[derive(Clone)]
pub struct JoolSourceConfig {
    /// The client to run (`nat64.jool`).
    pub path: PathBuf,
    /// Instances to read; empty: every NAT64 instance `jool instance display` lists.
    pub instances: Vec<String>,
    /// Deadline of one run.
    pub timeout: Duration,
    /// Cap on one run's output, bytes.
    pub max_output: usize,
    /// How many of the busiest IPv6 clients to keep.
    pub top_clients: usize,
    /// The data are recorded sample output (the demo's fake `jool`).
    pub sample_data: bool,
    /// Gives up runs in progress when this says so (the daemon is stopping).
    pub cancel: Option<Cancel>,
}

impl JoolSourceConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JoolSourceConfig {
            path: path.into(),
            instances: Vec::new(),
            timeout: Duration::from_secs(10),
            max_output: 64 << 20,
            top_clients: 10,
            sample_data: false,
            cancel: None,
        }
    }
}

/// Adds a problem unless one with the same code is there: the same cause (no capability,
/// say) fails every step and is said once.
fn add_problem(inst: &mut InstanceSnapshot, p: Problem) {
    if !inst.problems.iter().any(|q| q.code == p.code) {
        inst.problems.push(p);
    }
}

/// The real [`Nat64Source`]: runs `jool` for each instance.
pub struct JoolSource {
    runner: JoolRunner,
    cfg: JoolSourceConfig,
}

impl JoolSource {
    pub fn new(cfg: JoolSourceConfig) -> Self {
        let runner = JoolRunner {
            path: cfg.path.clone(),
            timeout: cfg.timeout,
            max_output: cfg.max_output,
            cancel: cfg.cancel.clone(),
        };
        JoolSource { runner, cfg }
    }

    pub fn path(&self) -> &Path {
        &self.runner.path
    }

    /// Runs and classifies; on success returns stdout.
    fn run_ok(&self, instance: &str, args: &[&str]) -> (String, Result<Vec<u8>, JoolError>) {
        let command = self.runner.command_line(args);
        let res = self
            .runner
            .run(args)
            .and_then(|out| classify(&command, instance, &out).map(|()| out.stdout));
        (command, res)
    }

    fn sample_instance(
        &self,
        name: &str,
        listed: Option<&crate::nat64::InstanceEntry>,
    ) -> Option<InstanceSnapshot> {
        let mut inst = InstanceSnapshot::new(name);
        if let Some(e) = listed {
            inst.namespace = Some(e.namespace.clone());
            inst.framework = Some(e.framework.clone());
        }
        let problem = add_problem;

        // Status first: a missing instance ends the round for it.
        let args = ["-i", name, "instance", "status"];
        let command = self.runner.command_line(&args);
        match self.runner.run(&args) {
            Err(e) => {
                let fatal = matches!(e, JoolError::NotInstalled { .. } | JoolError::Spawn { .. });
                problem(&mut inst, e.to_problem(&command));
                if fatal {
                    return Some(inst);
                }
            }
            Ok(out) => {
                let parsed = parse_status(&out.stdout);
                if let Err(e) = classify(&command, name, &out) {
                    problem(&mut inst, e.to_problem(&command));
                    inst.status = parsed.unwrap_or(InstanceStatus::NotRead);
                    if matches!(
                        e,
                        JoolError::ModuleNotLoaded { .. }
                            | JoolError::Nat64ModuleNotLoaded { .. }
                            | JoolError::VersionMismatch { .. }
                    ) {
                        return Some(inst);
                    }
                } else {
                    match parsed {
                        Ok(InstanceStatus::Dead(_)) if listed.is_some() => {
                            // Listed by `instance display` but absent here: it lives in another
                            // network namespace, which `jool` lists too.
                            return None;
                        }
                        Ok(st @ InstanceStatus::Dead(_)) => {
                            inst.status = st;
                            let e = JoolError::InstanceMissing {
                                command: command.clone(),
                                instance: name.to_string(),
                                stderr: String::new(),
                            };
                            problem(&mut inst, e.to_problem(&command));
                            return Some(inst);
                        }
                        Ok(st) => inst.status = st,
                        Err(source) => {
                            let e = JoolError::BadOutput {
                                command: command.clone(),
                                source,
                            };
                            problem(&mut inst, e.to_problem(&command));
                        }
                    }
                }
            }
        }

        // Counters: no capability needed (4.1.5+). An old client's partial list is kept.
        let args = ["-i", name, "stats", "display", "--csv", "--all"];
        let command = self.runner.command_line(&args);
        match self.runner.run(&args) {
            Err(e) => problem(&mut inst, e.to_problem(&command)),
            Ok(out) => match classify(&command, name, &out) {
                Err(e) if !matches!(e, JoolError::ClientTooOld { .. }) => {
                    problem(&mut inst, e.to_problem(&command))
                }
                verdict => {
                    match parse_stats(&out.stdout) {
                        Ok(stats) => {
                            inst.stats = stats;
                            inst.stats_read = true;
                        }
                        Err(source) => {
                            let e = JoolError::BadOutput {
                                command: command.clone(),
                                source,
                            };
                            problem(&mut inst, e.to_problem(&command));
                        }
                    }
                    if let Err(e) = verdict {
                        let mut p = e.to_problem(&command);
                        p.message
                            .push_str(&format!(" ({} counters read)", inst.stats.len()));
                        problem(&mut inst, p);
                    }
                }
            },
        }

        // Sessions, one run per protocol; a table that fails leaves no partial rows.
        let mut table = SessionTable::default();
        let mut all_read = true;
        for proto in Proto::ALL {
            let args = [
                "-i",
                name,
                "session",
                "display",
                "--numeric",
                "--csv",
                proto.flag(),
            ];
            let (command, res) = self.run_ok(name, &args);
            match res {
                Ok(stdout) => {
                    let before = table.sessions.len();
                    if let Err(source) = table.parse_append(&stdout) {
                        table.sessions.truncate(before);
                        all_read = false;
                        let e = JoolError::BadOutput {
                            command: command.clone(),
                            source,
                        };
                        problem(&mut inst, e.to_problem(&command));
                    }
                }
                Err(e) => {
                    all_read = false;
                    problem(&mut inst, e.to_problem(&command));
                }
            }
        }
        inst.sessions_read = all_read;

        // pool4, for port usage; optional (same capability as sessions).
        let args = ["-i", name, "pool4", "display", "--csv"];
        let (command, res) = self.run_ok(name, &args);
        match res.and_then(|out| {
            parse_pool4(&out).map_err(|source| JoolError::BadOutput {
                command: command.clone(),
                source,
            })
        }) {
            Ok(p) => inst.pool4 = Some(p),
            Err(e) => problem(&mut inst, e.to_problem(&command)),
        }

        inst.summary = aggregate::summarize(&table, inst.pool4.as_deref(), self.cfg.top_clients);
        inst.sessions = table;
        Some(inst)
    }
}

impl Nat64Source for JoolSource {
    fn sample(&mut self, now_ms: u64) -> Nat64Snapshot {
        let mut snap = Nat64Snapshot::new(now_ms);
        snap.sample_data = self.cfg.sample_data;
        if !self.cfg.instances.is_empty() {
            for name in &self.cfg.instances {
                if let Some(i) = self.sample_instance(name, None) {
                    snap.instances.push(i);
                }
            }
            return snap;
        }
        let args = ["instance", "display", "--csv"];
        let (command, res) = self.run_ok("", &args);
        let listed = match res.and_then(|out| {
            parse_instances(&out).map_err(|source| JoolError::BadOutput {
                command: command.clone(),
                source,
            })
        }) {
            Ok(l) => l,
            Err(e) => {
                snap.problems.push(e.to_problem(&command));
                return snap;
            }
        };
        let mut seen: Vec<&str> = Vec::new();
        for entry in &listed {
            // The same name in two namespaces: `-i NAME` reaches the one in ours.
            if seen.contains(&entry.name.as_str()) {
                continue;
            }
            seen.push(&entry.name);
            if let Some(i) = self.sample_instance(&entry.name, Some(entry)) {
                snap.instances.push(i);
            }
        }
        if snap.instances.is_empty() && snap.problems.is_empty() {
            snap.problems.push(Problem {
                code: ProblemCode::NoInstances,
                command,
                message: format!(
                    "no NAT64 Jool instance in this network namespace ({} listed in others): create one with `jool instance add --netfilter --pool6 64:ff9b::/96` or name it in nat64.instances",
                    listed.len()
                ),
            });
        }
        snap
    }
}
