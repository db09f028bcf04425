//! Prometheus text exposition (format 0.0.4), written into one buffer per scrape.
//!
//! Each area renders its own families through [`MetricsWriter`]; the writer escapes label
//! values and writes HELP and TYPE once per family, so the output passes
//! `promtool check metrics`.

use std::fmt::Write;

use crate::app::{App, Health};

/// Metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Accumulates the exposition text.
#[derive(Debug, Default)]
pub struct MetricsWriter {
    out: String,
}

impl MetricsWriter {
    /// An empty writer.
    pub fn new() -> Self {
        MetricsWriter {
            out: String::with_capacity(16 * 1024),
        }
    }

    /// Starts a family: its HELP and TYPE lines. `name` is the full name (`pirouterd_...`).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = write!(self.out, "{}", value as i64);
        } else if value.is_nan() {
            self.out.push_str("NaN");
        } else {
            let _ = write!(self.out, "{value}");
        }
        self.out.push('\n');
    }

    /// The text so far, for an area that writes whole families itself, HELP and TYPE
    /// lines included (the firewall writes label blocks it built once per ruleset shape).
    pub fn buffer(&mut self) -> &mut String {
        &mut self.out
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Appends a label value escaped for the text format (`\\`, `\"`, `\n`).
pub fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The daemon's own families: build info and component health.
pub fn render_core(app: &App, w: &mut MetricsWriter) {
    w.family(
        "pirouterd_build_info",
        Kind::Gauge,
        "pirouterd version and target; always 1.",
    );
    w.sample(
        "pirouterd_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("arch", std::env::consts::ARCH),
        ],
        1.0,
    );
    w.family(
        "pirouterd_component_up",
        Kind::Gauge,
        "1 when the component works, 0 when degraded or not yet sampled (see /api/v1/status for the reason).",
    );
    for (name, st) in app.components.snapshot() {
        if st.state == Health::Disabled {
            continue;
        }
        let v = if st.state == Health::Up { 1.0 } else { 0.0 };
        w.sample("pirouterd_component_up", &[("component", &name)], v);
    }
    w.family(
        "pirouterd_uptime_seconds",
        Kind::Gauge,
        "Seconds since the daemon started.",
    );
    let up = app.now_ms().saturating_sub(app.started_ms) as f64 / 1000.0;
    w.sample("pirouterd_uptime_seconds", &[], up.floor());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_values_formatted() {
        let mut w = MetricsWriter::new();
        w.family("pirouterd_x_total", Kind::Counter, "X.\nSecond line.");
        w.sample("pirouterd_x_total", &[("comment", "a \"b\" \\ c\nd")], 3.0);
        w.sample("pirouterd_x_total", &[], 0.5);
        let s = w.finish();
        assert_eq!(
            s,
            "# HELP pirouterd_x_total X.\\nSecond line.\n# TYPE pirouterd_x_total counter\n\
             pirouterd_x_total{comment=\"a \\\"b\\\" \\\\ c\\nd\"} 3\npirouterd_x_total 0.5\n"
        );
    }
}
