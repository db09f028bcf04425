//! Managed sets: the kernel's element dump decoder and the request element parser, on
//! arbitrary input, for every supported key type (plain, interval, concatenated).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pirouterd::sys::nft_sets::{
    build_change, decode_elements_dump, encode_change, set_info, Family, Op,
};

fuzz_target!(|data: &[u8]| {
    let sets = [
        set_info(Family::Inet, "t", "s", 0, 7, 4),
        set_info(Family::Inet, "t", "s", 4, 7, 4),
        set_info(Family::Inet, "t", "s", 4 | 16, 8, 16),
        set_info(Family::Inet, "t", "s", 4, 13, 2),
        set_info(Family::Inet, "t", "s", 0, (7 << 6) | 13, 8),
        set_info(Family::Inet, "t", "s", 4, (8 << 6) | 13, 20),
        set_info(Family::Inet, "t", "s", 0, 9, 6),
        set_info(Family::Inet, "t", "s", 0, (41 << 6) | 12, 20),
        set_info(Family::Inet, "t", "s", 0, 19, 4),
    ];
    let pick = data.first().copied().unwrap_or(0) as usize % sets.len();
    let set = &sets[pick];
    let _ = decode_elements_dump(set, data);
    if let Ok(text) = std::str::from_utf8(data.get(1..).unwrap_or(&[])) {
        let texts: Vec<String> = text.split(',').map(str::to_string).collect();
        if let Ok(c) = build_change(set, Op::Add, &texts, None) {
            // What was accepted encodes, and the encoding decodes back to as many elements.
            let (buf, seqs) = encode_change(&c, 1);
            assert_eq!(seqs.len(), c.elements.len());
            let back = decode_elements_dump(set, &buf).expect("own encoding decodes");
            assert!(back.len() <= 2 * c.elements.len());
        }
    }
});
