//! Arbitrary bytes through the nf_tables netlink decoders and the renderer: errors, never
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::firewall::expr::SetShape;
use pirouterd::firewall::render::{self, RenderEnv};
use pirouterd::firewall::Family;
use pirouterd::sys::nft::decode;

struct Env(SetShape);
impl RenderEnv for Env {
    fn set(&self, _name: &str) -> Option<&SetShape> {
        Some(&self.0)
    }
    fn ifname(&self, index: u32) -> Option<String> {
        Some(format!("if{index}"))
    }
}

fuzz_target!(|data: &[u8]| {
    // The first bytes pick a set shape the renderer will see for every lookup.
    let (head, body) = data.split_at(data.len().min(8));
    let mut h = [0u8; 8];
    h[..head.len()].copy_from_slice(head);
    let mut shape = SetShape {
        key_type: u32::from_le_bytes([h[0], h[1], h[2], 0]),
        key_len: u32::from(h[3]),
        flags: u32::from(h[4]),
        data_type: (h[5] & 1 == 1).then_some(0xffff_ff00),
        ..Default::default()
    };
    let mut elems = Vec::new();
    let _ = decode::decode_setelems(body, &mut elems);
    let _ = decode::count_setelems(body);
    shape.elements = Some(std::sync::Arc::new(elems.clone()));
    let env = Env(shape.clone());
    let _ = render::render_elements(&shape, &elems, &env);
    for m in decode::messages(body).flatten() {
        let _ = decode::decode_table(m.payload);
        let _ = decode::decode_chain(m.payload);
        let _ = decode::decode_set(m.payload);
        let _ = decode::decode_obj(m.payload);
        let _ = decode::decode_gen(m.payload);
        let _ = decode::error_code(m.payload);
    }
    for fam in [Family::Inet, Family::Ip, Family::Ip6, Family::Netdev] {
        if let Ok(r) = decode::decode_rule(body) {
            let _ = render::render_rule(fam, &r.exprs, &env);
        }
    }
    let e = decode::decode_expr(body);
    let _ = render::render_rule(Family::Inet, &[e], &env);
});
