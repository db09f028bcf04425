//! The persisted rule-state file and nfprom comment labels, on arbitrary input: errors,
//! never panics; metric label blocks stay unique and valid.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pirouterd::firewall::identity::{keys_for, Counter, RuleSample};
use pirouterd::firewall::labels::parse_labels;
use pirouterd::firewall::metrics::RuleLabels;
use pirouterd::firewall::persist;

fuzz_target!(|data: &[u8]| {
    let _ = persist::decode(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (n, _) in parse_labels(text).pairs {
        assert!(!n.is_empty() && !n.starts_with("__"));
        assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert!(!n.as_bytes()[0].is_ascii_digit());
    }
    // Every line is a rule comment in one chain: label blocks are unique.
    let rules: Vec<RuleSample> = text
        .lines()
        .take(64)
        .enumerate()
        .map(|(i, c)| RuleSample {
            family: "inet".into(),
            table: "t".into(),
            chain: "c".into(),
            table_handle: 1,
            handle: i as u64,
            comment: (!c.is_empty()).then(|| c.to_string()),
            text: "counter".into(),
            counter: Some(Counter::default()),
        })
        .collect();
    let keys: Vec<_> = keys_for(&rules).into_iter().map(Arc::new).collect();
    let labels = RuleLabels::build(&keys, &rules);
    let mut seen = std::collections::HashSet::new();
    for i in 0..rules.len() {
        assert!(seen.insert(labels.block(i).expect("block").to_string()));
    }
});
