//! nfprom-style labels in rule comments: `comment "nft(service=SSH;dir=in)"` gives the
//! labels `service="SSH"`, `dir="in"` on that rule's metrics.
//!
//! A comment without `nft(` has no labels. A malformed one yields the labels that parse and
//! a list of problems to show; it never stops anything.

/// Labels parsed from one comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// `(key, value)` in the order written; keys are valid Prometheus label names.
    pub pairs: Vec<(String, String)>,
    /// What was wrong, for the status page (empty when all was well).
    pub problems: Vec<String>,
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    !k.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the `nft(key=value;...)` part of a comment.
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
        if !valid_key(k) {
            out.problems
                .push(format!("{k:?} is not a valid label name"));
            continue;
        }
        if out.pairs.iter().any(|(have, _)| have == k) {
            out.problems
                .push(format!("label {k:?} given twice; the first is kept"));
            continue;
        }
        out.pairs.push((k.to_string(), v.to_string()));
    }
    out
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
        let l = parse_labels("web nft(service=HTTP;oops;9x=1;service=again;dir=in");
        assert_eq!(
            l.pairs,
            vec![
                ("service".to_string(), "HTTP".to_string()),
                ("dir".to_string(), "in".to_string())
            ]
        );
        assert_eq!(l.problems.len(), 4, "{:?}", l.problems);
    }
}
