//! nfprom-style labels in rule comments: `comment "nft(service=SSH;dir=in)"` gives the
//! labels `service="SSH"`, `dir="in"` on that rule's metrics and in the JSON API.
//!
//! One parser for both, so a rule carries the same labels everywhere. Keys are exported
//! under valid, `snake_case` Prometheus names (promtool's lint): `serviceName` becomes
//! `service_name`, `dst-port` becomes `dst_port`, a key that would shadow a fixed label of
//! rule series (or start with the reserved `__`) is prefixed with `nft_`. A renamed key is
//! noted among the problems, so the page can say what to query.
//!
//! A comment without `nft(` has no labels. A malformed one yields the labels that parse and
//! a list of problems to show; it never stops anything.

/// Fixed labels of rule series; nfprom keys may not take these names.
pub const RULE_LABELS: [&str; 5] = ["family", "table", "chain", "comment", "rule"];

/// Labels parsed from one comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// `(name, value)` in the order written, under their export names ([`label_name`]).
    pub pairs: Vec<(String, String)>,
    /// What was wrong or renamed, for the status page (empty when all was well).
    pub problems: Vec<String>,
}

/// Parses the `nft(key=value;...)` part of a comment. Pairs without `=` or with an empty key
/// are skipped; of two keys with one export name the first is kept.
pub fn parse_labels(comment: &str) -> Labels {
    let mut out = Labels::default();
    let Some(start) = comment.find("nft(") else {
        return out;
    };
    let body = &comment[start + 4..];
    let body = match body.rfind(')') {
        Some(end) => &body[..end],
        None => {
            out.problems.push("missing closing ')'".to_string());
            body
        }
    };
    for item in body.split(';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            out.problems.push(format!("{item:?} is not key=value"));
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            out.problems.push(format!("{item:?} has no key"));
            continue;
        }
        let name = label_name(k);
        if out.pairs.iter().any(|(have, _)| *have == name) {
            out.problems
                .push(format!("label {name:?} given twice; the first is kept"));
            continue;
        }
        if name != k {
            out.problems
                .push(format!("key {k:?} is exported as {name:?}"));
        }
        out.pairs.push((name, v.to_string()));
    }
    out
}

/// Makes a valid, `snake_case` Prometheus label name of an nfprom key: camelCase becomes
/// camel_case, characters outside `[a-z0-9_]` become `_`, a leading digit gets a `_`, a
/// leading `__` (reserved) and the fixed label names get an `nft_` prefix.
pub fn label_name(key: &str) -> String {
    let mut s = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            s.push(c);
            prev_lower = true;
        } else {
            s.push('_');
            prev_lower = false;
        }
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if s.starts_with("__") || RULE_LABELS.contains(&s.as_str()) {
        s.insert_str(0, "nft_");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfprom_example_parses() {
        let l = parse_labels("nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=in)");
        assert_eq!(
            l.pairs,
            vec![
                ("l2proto".to_string(), "ipv4".to_string()),
                ("l3proto".to_string(), "tcp".to_string()),
                ("service".to_string(), "SSH".to_string()),
                ("dir".to_string(), "in".to_string()),
            ]
        );
        assert!(l.problems.is_empty());
    }

    #[test]
    fn plain_comment_has_no_labels() {
        assert_eq!(parse_labels("allow ssh"), Labels::default());
    }

    #[test]
    fn malformed_parts_are_reported_not_fatal() {
        let l = parse_labels("web nft(service=HTTP;oops;9x=1;service=again;=v;dir=in");
        assert_eq!(
            l.pairs,
            vec![
                ("service".to_string(), "HTTP".to_string()),
                ("_9x".to_string(), "1".to_string()),
                ("dir".to_string(), "in".to_string())
            ]
        );
        // Missing ')', "oops", 9x renamed, service twice, "=v" without a key.
        assert_eq!(l.problems.len(), 5, "{:?}", l.problems);
        assert!(l.problems.iter().any(|p| p.contains("exported as \"_9x\"")));
    }

    #[test]
    fn keys_are_trimmed_and_empty_values_kept() {
        let l = parse_labels("allow ssh nft( a = 1 ;junk;=x;a=2;b=)");
        assert_eq!(
            l.pairs,
            vec![("a".into(), "1".into()), ("b".into(), String::new())]
        );
        assert_eq!(
            parse_labels("nft(a=1").pairs,
            vec![("a".into(), "1".into())]
        );
        // Two spellings of one export name: the first wins.
        let l = parse_labels("nft(serviceName=a;service_name=b)");
        assert_eq!(l.pairs, vec![("service_name".into(), "a".into())]);
    }

    #[test]
    fn label_names_are_valid_snake_case_and_never_shadow() {
        assert_eq!(label_name("serviceName"), "service_name");
        assert_eq!(label_name("l2proto"), "l2proto");
        assert_eq!(label_name("dst-port"), "dst_port");
        assert_eq!(label_name("1x"), "_1x");
        assert_eq!(label_name("__name__"), "nft___name__");
        assert_eq!(label_name("table"), "nft_table");
        assert_eq!(label_name("ÿ"), "_");
    }
}
