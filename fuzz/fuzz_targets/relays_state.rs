//! The relay state file: whatever bytes are on disk (a torn write from another tool, a hand
//! edit), parsing never panics, and what we render parses back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pirouterd::relays::relay::{step, Event, RelayState};
use pirouterd::relays::store::StateFile;
use pirouterd::relays::{AtStart, Drive, Now, RelayConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = StateFile::parse(data) else {
        return;
    };
    let again = StateFile::parse(&file.render()).expect("rendered file parses");
    for name in ["fireplace", "porch-light", "a", ""] {
        let saved = file.get(name);
        assert_eq!(saved, again.get(name));
        // Whatever was saved, booting from it never panics and never leaves a relay on past
        // its max_on.
        let cfg = RelayConfig {
            name: "r".into(),
            pin: 5,
            active_low: true,
            drive: Drive::Level,
            sense: None,
            max_on: Some(std::time::Duration::from_secs(3600)),
            min_off: Some(std::time::Duration::from_secs(600)),
            at_start: AtStart::Restore,
            switch: None,
        };
        let now = Now::at(1_700_000_000_000);
        let p = step(
            &cfg,
            &RelayState::initial(now),
            Event::Boot { saved, sensed: None },
            now,
        )
        .expect("boot never refuses");
        if let Some(t) = p.state.auto_off_at_ms {
            assert!(t <= now.wall_ms + 3_600_000);
        }
        if p.state.on {
            assert!(p.state.auto_off_at_ms.is_some());
        }
    }
});
