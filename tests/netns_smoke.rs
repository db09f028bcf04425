//! The namespace helper itself: a veth pair carries a ping and a ruleset loads.
mod common;
use common::Netns;

#[test]
fn veth_pair_carries_traffic_and_nft_loads() {
    let a = Netns::new("smoke");
    let b = Netns::new("smoke");
    a.veth("va", "10.99.0.1/30", &b, "vb", "10.99.0.2/30");
    a.nft_load(
        "table inet t {\n chain c {\n type filter hook output priority 0;\n counter\n }\n}\n",
    );
    a.run(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.99.0.2"]);
    let j = a.nft_json();
    let rules: Vec<_> = j["nftables"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o.get("rule"))
        .collect();
    assert_eq!(rules.len(), 1);
    let packets = rules[0]["expr"][0]["counter"]["packets"]
        .as_u64()
        .expect("counter");
    assert!(packets >= 2, "the ping's packets were counted: {packets}");
}
