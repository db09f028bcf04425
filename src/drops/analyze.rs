//! `pirouterd analyze FILE...`: a summary of dropped-packet kernel log lines, without Loki.
//!
//! Reads `/var/log/kern.log`, `/var/log/syslog`, `journalctl -k` or `dmesg` output (`-` is
//! standard input), keeps the packet log lines (optionally only those whose prefix contains
//! `--prefix TEXT`, as `grep` would), and prints totals, the time span and top tables by
//! host, prefix, protocol, interface, destination port, source and destination, as a table or
//! `--json`. Other kernel messages are counted, not reported; packet lines that do not parse
//! are counted and the first ones shown with file and line number. Memory stays constant
//! however large the input: the tables are Space-Saving summaries (exact until a table has
//! more distinct keys than its capacity, then marked with their possible error).

use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::Serialize;

use super::logline::{self, LogLineError, Timestamp};
use super::sketch::{Hitter, SpaceSaving};
use super::{prefix_label, IfName, Proto};

/// How many unparseable lines are kept as examples (all are counted).
const BAD_EXAMPLES: usize = 20;
/// Longest excerpt of an unparseable line in the report.
const EXCERPT: usize = 160;
/// Longest line read whole; a longer one is skipped and reported (kernel lines are < 1 KiB).
pub const MAX_LINE: usize = 1 << 20;

static IN_EQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"IN="));

/// Accumulates lines; [`Analysis::report`] summarises them.
pub struct Analysis {
    keys: usize,
    filter: Option<String>,
    filter_finder: Option<Finder<'static>>,
    lines: u64,
    packets: u64,
    bytes: u64,
    other_lines: u64,
    filtered_out: u64,
    unparseable: u64,
    bad_examples: Vec<BadLine>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    hosts: SpaceSaving<Box<str>>,
    prefixes: SpaceSaving<Box<str>>,
    protocols: SpaceSaving<Option<Proto>>,
    interfaces: SpaceSaving<IfName>,
    ports: SpaceSaving<(Proto, u16)>,
    sources: SpaceSaving<IpAddr>,
    destinations: SpaceSaving<IpAddr>,
}

/// An unparseable line, as shown in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
    pub text: String,
}

impl Analysis {
    /// `filter`: keep only lines whose log prefix contains this text.
    pub fn new(filter: Option<String>) -> Analysis {
        Analysis::with_capacity(filter, 1024)
    }

    /// Like [`Analysis::new`], keeping up to `keys` keys in the large tables (sources,
    /// destinations, ports; a quarter of that in the others). Tables are exact until they
    /// see more distinct keys than that; any key above `lines / keys` is always kept.
    pub fn with_capacity(filter: Option<String>, keys: usize) -> Analysis {
        let filter = filter.filter(|f| !f.is_empty());
        Analysis {
            keys,
            filter_finder: filter
                .as_ref()
                .map(|f| Finder::new(f.as_bytes()).into_owned()),
            filter,
            lines: 0,
            packets: 0,
            bytes: 0,
            other_lines: 0,
            filtered_out: 0,
            unparseable: 0,
            bad_examples: Vec::new(),
            first: None,
            last: None,
            hosts: SpaceSaving::new(keys / 4),
            prefixes: SpaceSaving::new(keys / 4),
            protocols: SpaceSaving::new(keys / 16),
            interfaces: SpaceSaving::new(keys / 4),
            ports: SpaceSaving::new(keys),
            sources: SpaceSaving::new(keys),
            destinations: SpaceSaving::new(keys),
        }
    }

    /// Counts one line (`line` without its newline; a trailing `\r` is tolerated).
    pub fn feed(&mut self, file: &str, lineno: u64, line: &[u8]) {
        self.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(f) = &self.filter_finder {
            if f.find(line).is_none() {
                // Not even the text: cheap skip (other prefixes or other messages).
                if IN_EQ.find(line).is_some() {
                    self.filtered_out += 1;
                } else {
                    self.other_lines += 1;
                }
                return;
            }
        }
        let text = match std::str::from_utf8(line) {
            Ok(t) => t,
            Err(_) => {
                if memchr::memmem::find(line, b" OUT=").is_some() {
                    self.bad(file, lineno, "not UTF-8 text".into(), line);
                } else {
                    self.other_lines += 1;
                }
                return;
            }
        };
        let parsed = match logline::parse(text) {
            Ok(p) => p,
            Err(LogLineError::NotPacketLog) => {
                self.other_lines += 1;
                return;
            }
            Err(e) => {
                self.bad(file, lineno, e.to_string(), line);
                return;
            }
        };
        let ev = &parsed.event;
        let label = prefix_label(&ev.prefix);
        if let Some(f) = &self.filter_finder {
            if f.find(ev.prefix.as_bytes()).is_none() {
                self.filtered_out += 1;
                return;
            }
        }
        self.packets += 1;
        self.bytes += u64::from(ev.len);
        if let Some(t) = parsed.time {
            match self.first {
                None => {
                    self.first = Some(t);
                    self.last = Some(t);
                }
                Some(first) => {
                    // Only timestamps of the first line's kind make a span.
                    if std::mem::discriminant(&first) == std::mem::discriminant(&t) {
                        self.last = Some(t);
                    }
                }
            }
        }
        self.hosts.offer(parsed.host.unwrap_or("-"), 1);
        self.prefixes.offer(label, 1);
        self.protocols.offer(&ev.proto, 1);
        self.interfaces.offer(&ev.iface(), 1);
        if let (Some(p), Some(port)) = (ev.proto, ev.dport) {
            if p.has_ports() {
                self.ports.offer(&(p, port), 1);
            }
        }
        if let Some(a) = &ev.src {
            self.sources.offer(a, 1);
        }
        if let Some(a) = &ev.dst {
            self.destinations.offer(a, 1);
        }
    }

    fn bad(&mut self, file: &str, lineno: u64, reason: String, line: &[u8]) {
        self.unparseable += 1;
        if self.bad_examples.len() < BAD_EXAMPLES {
            let text = String::from_utf8_lossy(line);
            let mut end = text.len().min(EXCERPT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.bad_examples.push(BadLine {
                file: file.to_string(),
                line: lineno,
                reason,
                text: text[..end].to_string(),
            });
        }
    }

    /// Streams one input through [`Analysis::feed`], line by line, in constant memory: reads
    /// 1 MiB blocks and hands out lines in place; only a line split across two blocks is
    /// copied. A line longer than [`MAX_LINE`] counts as one unparseable line.
    pub fn feed_reader(&mut self, name: &str, mut input: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut carry: Vec<u8> = Vec::new();
        let mut skipping = false;
        let mut lineno = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..n];
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', chunk) {
                lineno += 1;
                if skipping {
                    skipping = false;
                } else if carry.is_empty() {
                    self.feed(name, lineno, &chunk[start..nl]);
                } else {
                    carry.extend_from_slice(&chunk[start..nl]);
                    self.feed(name, lineno, &carry);
                    carry.clear();
                }
                start = nl + 1;
            }
            let rest = &chunk[start..];
            if skipping {
                continue;
            }
            if carry.len() + rest.len() > MAX_LINE {
                self.lines += 1;
                carry.extend_from_slice(&rest[..rest.len().min(EXCERPT)]);
                let line = carry.clone();
                self.bad(name, lineno + 1, "line longer than 1 MiB".into(), &line);
                carry.clear();
                carry.shrink_to(4096);
                skipping = true;
            } else {
                carry.extend_from_slice(rest);
            }
        }
        if !carry.is_empty() && !skipping {
            self.feed(name, lineno + 1, &carry);
        }
        Ok(())
    }

    /// Adds the analysis of the input that directly follows this one's (the next part of
    /// the same file): its line numbers are shifted by the lines this one has seen.
    pub fn append(&mut self, other: Analysis) {
        let offset = self.lines;
        self.lines += other.lines;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.other_lines += other.other_lines;
        self.filtered_out += other.filtered_out;
        self.unparseable += other.unparseable;
        for mut b in other.bad_examples {
            if self.bad_examples.len() < BAD_EXAMPLES {
                b.line += offset;
                self.bad_examples.push(b);
            }
        }
        match (self.first, other.first) {
            (None, _) => {
                self.first = other.first;
                self.last = other.last;
            }
            (Some(f), Some(of)) => {
                let same = |t: Timestamp| std::mem::discriminant(&t) == std::mem::discriminant(&f);
                if let Some(ol) = other
                    .last
                    .filter(|t| same(*t))
                    .or(Some(of).filter(|t| same(*t)))
                {
                    self.last = Some(ol);
                }
            }
            (Some(_), None) => {}
        }
        self.hosts.merge_from(&other.hosts);
        self.prefixes.merge_from(&other.prefixes);
        self.protocols.merge_from(&other.protocols);
        self.interfaces.merge_from(&other.interfaces);
        self.ports.merge_from(&other.ports);
        self.sources.merge_from(&other.sources);
        self.destinations.merge_from(&other.destinations);
    }

    /// Analyses a regular file, in `threads` parts read in parallel when it is large (each
    /// part in constant memory, merged in order). Falls back to one pass for small files,
    /// pipes and when part boundaries cannot be found.
    pub fn feed_file(&mut self, path: &str, threads: usize) -> io::Result<()> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        if threads < 2 || !meta.is_file() || size < PARALLEL_MIN {
            return self.feed_reader(path, file);
        }
        let mut bounds = vec![0u64];
        for i in 1..threads as u64 {
            match next_line_start(&file, size * i / threads as u64, size)? {
                Some(b) if b > *bounds.last().unwrap_or(&0) && b < size => bounds.push(b),
                _ => {}
            }
        }
        bounds.push(size);
        let parts: Vec<io::Result<Analysis>> = std::thread::scope(|s| {
            let handles: Vec<_> = bounds
                .windows(2)
                .map(|w| {
                    let (start, end) = (w[0], w[1]);
                    let mut part = Analysis::with_capacity(self.filter.clone(), self.keys);
                    s.spawn(move || -> io::Result<Analysis> {
                        use std::io::{Seek, SeekFrom};
                        let mut f = std::fs::File::open(path)?;
                        f.seek(SeekFrom::Start(start))?;
                        part.feed_reader(path, f.take(end - start))?;
                        Ok(part)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("analysis thread panicked")))
                })
                .collect()
        });
        for p in parts {
            self.append(p?);
        }
        Ok(())
    }

    /// The summary with `top` rows per table.
    pub fn report(&self, top: usize) -> Report {
        fn rows<K>(v: Vec<Hitter<K>>, f: impl Fn(&K) -> String) -> Vec<Row> {
            v.iter()
                .map(|h| Row {
                    key: f(&h.key),
                    count: h.count,
                    error: h.error,
                })
                .collect()
        }
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => a.millis_until(b).map(|ms| ms / 1000),
            _ => None,
        };
        Report {
            lines: self.lines,
            packets: self.packets,
            bytes: self.bytes,
            other_lines: self.other_lines,
            filtered_out: self.filtered_out,
            unparseable: self.unparseable,
            unparseable_lines: self.bad_examples.clone(),
            prefix_filter: self.filter.clone(),
            first: self.first.map(format_time),
            last: self.last.map(format_time),
            span_seconds: span,
            hosts: rows(self.hosts.top(top), |h| h.to_string()),
            prefixes: rows(self.prefixes.top(top), |p| p.to_string()),
            protocols: rows(self.protocols.top(top), |p| {
                p.map_or_else(|| "unknown".into(), |p| p.to_string())
            }),
            interfaces: rows(self.interfaces.top(top), |i| {
                if i.is_empty() {
                    "-".into()
                } else {
                    i.to_string()
                }
            }),
            ports: rows(self.ports.top(top), |(p, port)| format!("{port}/{p}")),
            sources: rows(self.sources.top(top), |a| a.to_string()),
            destinations: rows(self.destinations.top(top), |a| a.to_string()),
        }
    }
}

/// Files smaller than this are read in one pass.
const PARALLEL_MIN: u64 = 16 << 20;

/// The offset just after the first newline at or after `from`, if one comes within 1 MiB.
fn next_line_start(file: &std::fs::File, from: u64, size: u64) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = from;
    while at < size && at - from < MAX_LINE as u64 {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(Some(at + i as u64 + 1));
        }
        at += n as u64;
    }
    Ok(None)
}

/// One row of a top table: the true count lies in `count - error ..= count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub key: String,
    pub count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub error: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What `analyze` prints (`--json` prints exactly this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub lines: u64,
    /// Dropped-packet lines counted (after the prefix filter).
    pub packets: u64,
    /// Sum of their IP lengths.
    pub bytes: u64,
    /// Lines that are not packet logs (other kernel messages).
    pub other_lines: u64,
    /// Packet log lines whose prefix did not match `--prefix`.
    pub filtered_out: u64,
    pub unparseable: u64,
    /// The first unparseable lines (all are counted above).
    pub unparseable_lines: Vec<BadLine>,
    pub prefix_filter: Option<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub span_seconds: Option<i64>,
    pub hosts: Vec<Row>,
    pub prefixes: Vec<Row>,
    pub protocols: Vec<Row>,
    pub interfaces: Vec<Row>,
    /// `port/proto`, e.g. `22/tcp`.
    pub ports: Vec<Row>,
    pub sources: Vec<Row>,
    pub destinations: Vec<Row>,
}

/// A timestamp as the report shows it.
pub fn format_time(t: Timestamp) -> String {
    match t {
        Timestamp::Unix(ms) => crate::logging::utc(ms.div_euclid(1000)),
        Timestamp::Yearless(ms) => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            const STARTS: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
            let secs = ms / 1000;
            let doy = secs / 86_400;
            let m = STARTS.iter().rposition(|s| *s <= doy).unwrap_or(0).min(11);
            let sod = secs % 86_400;
            format!(
                "{} {:>2} {:02}:{:02}:{:02}",
                MONTHS[m],
                doy - STARTS[m] + 1,
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            )
        }
        Timestamp::Boot(ms) => format!("{}.{:03}s after boot", ms / 1000, ms % 1000),
    }
}

fn human_span(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if d > 0 {
        let _ = write!(out, "{d}d");
    }
    if h > 0 || d > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 || h > 0 || d > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

impl fmt::Display for Report {
    /// The readable table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} dropped packets ({} bytes) in {} lines; {} other kernel lines, {} with other \
             prefixes, {} unparseable",
            self.packets,
            self.bytes,
            self.lines,
            self.other_lines,
            self.filtered_out,
            self.unparseable
        )?;
        if let Some(p) = &self.prefix_filter {
            writeln!(f, "prefix filter: {p}")?;
        }
        if let (Some(a), Some(b)) = (&self.first, &self.last) {
            write!(f, "time span: {a} .. {b}")?;
            if let Some(s) = self.span_seconds {
                write!(f, " ({})", human_span(s))?;
            }
            writeln!(f)?;
        }
        let tables: [(&str, &[Row]); 7] = [
            ("hosts", &self.hosts),
            ("prefixes", &self.prefixes),
            ("protocols", &self.protocols),
            ("interfaces", &self.interfaces),
            ("destination ports", &self.ports),
            ("sources", &self.sources),
            ("destinations", &self.destinations),
        ];
        for (title, rows) in tables {
            if rows.is_empty() {
                continue;
            }
            writeln!(f)?;
            let width = rows
                .iter()
                .map(|r| r.key.len())
                .max()
                .unwrap_or(0)
                .max(title.len());
            writeln!(f, "{title:<width$}  {:>10}  {:>6}", "count", "share")?;
            for r in rows {
                let share = if self.packets > 0 {
                    100.0 * r.count as f64 / self.packets as f64
                } else {
                    0.0
                };
                write!(f, "{:<width$}  {:>10}  {share:>5.1}%", r.key, r.count)?;
                if r.error > 0 {
                    write!(f, "  (at least {})", r.count - r.error)?;
                }
                writeln!(f)?;
            }
        }
        if self.unparseable > 0 {
            writeln!(f, "\nunparseable lines ({} in all):", self.unparseable)?;
            for b in &self.unparseable_lines {
                writeln!(f, "{}:{}: {}: {}", b.file, b.line, b.reason, b.text)?;
            }
            if self.unparseable > self.unparseable_lines.len() as u64 {
                writeln!(
                    f,
                    "... and {} more",
                    self.unparseable - self.unparseable_lines.len() as u64
                )?;
            }
        }
        Ok(())
    }
}

const USAGE: &str = "\
usage: pirouterd analyze [--prefix TEXT] [--json] [--top N] FILE...

Summarises dropped-packet kernel log lines (nftables `log prefix \"...\"` rules) from
/var/log/kern.log, /var/log/syslog, `journalctl -k` or `dmesg` output. `-` reads standard
input, e.g. `journalctl -k -b | pirouterd analyze -`.

  --prefix TEXT   only lines whose log prefix contains TEXT (e.g. nft-dropped)
  --json          print the report as JSON
  --top N         rows per table (default 10)
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeArgs {
    pub files: Vec<String>,
    pub prefix: Option<String>,
    pub json: bool,
    pub top: usize,
}

/// Parses the arguments after `analyze`. `Ok(None)` means `--help`.
pub fn parse_args(args: &[String]) -> Result<Option<AnalyzeArgs>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let mut out = AnalyzeArgs {
        files: Vec::new(),
        prefix: None,
        json: false,
        top: 10,
    };
    let err = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Long("prefix") => out.prefix = Some(p.value().map_err(err)?.string().map_err(err)?),
            Long("json") => out.json = true,
            Long("top") => {
                let v = p.value().map_err(err)?.string().map_err(err)?;
                out.top = v
                    .parse()
                    .map_err(|_| format!("--top wants a number, not {v:?}"))?;
            }
            Short('h') | Long("help") => return Ok(None),
            Value(v) => out.files.push(v.string().map_err(err)?),
            // `-` alone is standard input, which lexopt reports as a value.
            other => return Err(other.unexpected().to_string()),
        }
    }
    if out.files.is_empty() {
        return Err("no input: name at least one FILE, or - for standard input".into());
    }
    Ok(Some(out))
}

/// `pirouterd analyze ...` (arguments after the verb). Returns the exit code: 0, 1 when an
/// input could not be read (the others are still analysed), 2 for a usage error.
pub fn analyze_main(args: &[String]) -> i32 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    run(
        args,
        &mut stdout.lock(),
        &mut stderr.lock(),
        &mut io::stdin().lock(),
    )
}

/// [`analyze_main`] with its streams given (tests use this).
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write, stdin: &mut dyn Read) -> i32 {
    let a = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = out.write_all(USAGE.as_bytes());
            return 0;
        }
        Err(e) => {
            let _ = writeln!(err, "pirouterd analyze: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let mut analysis = Analysis::new(a.prefix.clone());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut code = 0;
    for file in &a.files {
        let result = if file == "-" {
            analysis.feed_reader("-", &mut *stdin)
        } else {
            analysis.feed_file(file, threads)
        };
        if let Err(e) = result {
            let _ = writeln!(err, "pirouterd analyze: cannot read {file}: {e}");
            code = 1;
        }
    }
    let report = analysis.report(a.top);
    let written = if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{report}")
    };
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(err, "pirouterd analyze: cannot write the report: {e}");
            code = 1;
        }
    }
    code
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_round_trip() {
        assert_eq!(format_time(Timestamp::Unix(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(Timestamp::Unix(1_767_413_906_000)),
            "2026-01-03T04:18:26Z"
        );
        assert_eq!(
            format_time(Timestamp::Yearless(
                ((2 * 24 + 4) * 3600 + 18 * 60 + 26) * 1000
            )),
            "Jan  3 04:18:26"
        );
        assert_eq!(format_time(Timestamp::Boot(812_345)), "812.345s after boot");
        assert_eq!(human_span(3661), "1h1m1s");
        assert_eq!(human_span(59), "59s");
    }

    #[test]
    fn parallel_parts_give_the_same_report_as_one_pass() {
        let mut text = String::new();
        for i in 0..200_000u32 {
            let line = match i % 5 {
                0 => format!("Jan  1 00:{:02}:{:02} h{} kernel: nft-dropped: IN=wan0 OUT= SRC=10.{}.{}.1 DST=192.0.2.1 LEN=40 TTL=9 PROTO=TCP SPT=1 DPT={} SYN URGP=0", i / 60 % 60, i % 60, i % 3, i % 7, i % 11, i % 13),
                1 => format!("Jan  1 00:00:01 h kernel: other message {i}"),
                2 => "Jan  1 00:00:02 h kernel: nft-dropped: IN=wan0 OUT= SRC=10.0.0".to_string(),
                3 => format!("Jan  1 00:00:03 h kernel: v6: IN=lan0 OUT=wan0 SRC=2001:db8::{:x} DST=2001:db8::1 LEN=80 HOPLIMIT=3 PROTO=UDP SPT=1 DPT=53 LEN=40", i % 17),
                _ => format!("Jan  2 00:00:{:02} h kernel: nft-dropped: IN=wan0 OUT= SRC=10.1.1.1 DST=192.0.2.1 LEN=28 TTL=9 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ={i}", i % 60),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let dir = std::env::temp_dir().join(format!("pirouterd-analyze-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kern.log");
        std::fs::write(&path, &text).unwrap();
        assert!(text.len() as u64 > PARALLEL_MIN);
        let p = path.to_str().unwrap();
        let mut one = Analysis::new(None);
        one.feed_file(p, 1).unwrap();
        let mut four = Analysis::new(None);
        four.feed_file(p, 4).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let (a, b) = (one.report(1000), four.report(1000));
        assert_eq!(a.lines, 200_000);
        assert_eq!(a.unparseable, 40_000);
        // Every table is exact here (fewer keys than capacity), so both must agree fully,
        // up to the order of equal counts.
        let sorted = |mut v: Vec<Row>| {
            v.sort_by(|x, y| y.count.cmp(&x.count).then(x.key.cmp(&y.key)));
            v
        };
        assert_eq!(sorted(a.sources.clone()), sorted(b.sources.clone()));
        assert_eq!(sorted(a.ports.clone()), sorted(b.ports.clone()));
        assert_eq!(sorted(a.hosts.clone()), sorted(b.hosts.clone()));
        assert_eq!(
            (
                a.packets,
                a.bytes,
                a.other_lines,
                a.first.clone(),
                a.last.clone()
            ),
            (
                b.packets,
                b.bytes,
                b.other_lines,
                b.first.clone(),
                b.last.clone()
            )
        );
        assert_eq!(a.unparseable_lines, b.unparseable_lines);
        assert_eq!(b.unparseable_lines[1].line, 8);
    }

    #[test]
    fn args() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = parse_args(&s(&["--prefix", "nft-dropped", "--json", "-", "x.log"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.files, vec!["-", "x.log"]);
        assert_eq!(a.prefix.as_deref(), Some("nft-dropped"));
        assert!(a.json);
        assert!(parse_args(&s(&[])).is_err());
        assert!(parse_args(&s(&["--bogus", "f"])).is_err());
        assert!(parse_args(&s(&["--top", "x", "f"])).is_err());
        assert_eq!(parse_args(&s(&["--help"])).unwrap(), None);
    }
}
