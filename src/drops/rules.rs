//! Tying a drop back to the rule that logged it: the rule whose `log prefix "..."` is the
//! prefix the packet carries.
//!
//! Pure: works on rule text in nft syntax (`... log prefix "nft-dropped: " group 1 drop`), as
//! the firewall snapshot renders rules, so it does not depend on the snapshot's types. The
//! firewall area (or the drops route, once that snapshot is published on `App`) feeds its
//! rules through [`PrefixIndex::build`] and looks each top prefix up.

use std::collections::BTreeMap;

use super::prefix_label;

/// The `log prefix` of a rule, from its nft-syntax text (the string between the quotes,
/// unescaped), if it has one.
pub fn log_prefix(rule_text: &str) -> Option<String> {
    let at = rule_text.find("log prefix \"")?;
    let rest = &rule_text[at + "log prefix \"".len()..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None // no closing quote
}

/// Which rules log with which prefix label (`nft-dropped`, trailing `": "` trimmed, the same
/// key the aggregator uses). `R` is whatever identifies a rule for the page (family, table,
/// chain, handle).
#[derive(Debug, Clone)]
pub struct PrefixIndex<R> {
    by_label: BTreeMap<String, Vec<R>>,
}

impl<R: Clone> PrefixIndex<R> {
    /// Indexes `(rule, text)` pairs; rules without `log prefix` are skipped.
    pub fn build<'a>(rules: impl IntoIterator<Item = (R, &'a str)>) -> Self {
        let mut by_label: BTreeMap<String, Vec<R>> = BTreeMap::new();
        for (r, text) in rules {
            if let Some(p) = log_prefix(text) {
                by_label
                    .entry(prefix_label(&p).to_string())
                    .or_default()
                    .push(r);
            }
        }
        PrefixIndex { by_label }
    }

    /// The rules carrying this prefix (label or raw form), possibly several (one per chain).
    pub fn rules_for(&self, prefix: &str) -> &[R] {
        self.by_label
            .get(prefix_label(prefix))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_from_the_seed_rules() {
        assert_eq!(
            log_prefix(
                r#"limit rate 2/minute counter packets 0 bytes 0 log prefix "nft-dropped: ""#
            ),
            Some("nft-dropped: ".into())
        );
        assert_eq!(
            log_prefix(r#"limit rate 1/second counter log flags all prefix "x""#),
            None,
            "only `log prefix` as nft prints it"
        );
        assert_eq!(
            log_prefix(r#"log prefix "say \"hi\": " group 2 drop"#),
            Some("say \"hi\": ".into())
        );
        assert_eq!(log_prefix(r#"log prefix "unterminated"#), None);
        assert_eq!(log_prefix("counter drop"), None);
    }

    #[test]
    fn index_matches_labels_and_raw_prefixes() {
        let rules = [
            (
                (1u32, "LOGGING"),
                r#"limit rate 2/minute counter log prefix "nft-dropped: " drop"#,
            ),
            (
                (2, "LOGGING-VERBOSE"),
                r#"limit rate 1/second counter log prefix "verbose-nft-dropped: " group 1"#,
            ),
            ((3, "input"), "counter drop"),
            ((4, "forward"), r#"log prefix "nft-dropped: " group 1 drop"#),
        ];
        let idx = PrefixIndex::build(rules.iter().map(|(r, t)| (*r, *t)));
        assert_eq!(
            idx.rules_for("nft-dropped"),
            &[(1, "LOGGING"), (4, "forward")]
        );
        assert_eq!(
            idx.rules_for("verbose-nft-dropped: "),
            &[(2, "LOGGING-VERBOSE")]
        );
        assert!(idx.rules_for("other").is_empty());
    }
}
