//! Human durations as written in the config and the API: `"100ms"`, `"5s"`, `"45m"`, `"4h"`,
//! `"1d"`, and sums such as `"1h30m"`. Parsing is strict: a typo is an error, never a guess.

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration: write a number and a unit, e.g. \"5s\" or \"45m\"")]
    Empty,
    /// A number without a unit, or an unknown unit.
    #[error(
        "bad duration {0:?}: use a number followed by ms, s, m, h or d, e.g. \"5s\", \"1h30m\""
    )]
    Syntax(String),
    /// The value does not fit.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `"100ms"`, `"5s"`, `"45m"`, `"4h"`, `"1d"` and sums like `"1h30m"`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let bad = || DurationError::Syntax(text.to_string());
    let mut total: u64 = 0; // milliseconds
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(text.into()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(text.into()))?;
    }
    Ok(Duration::from_millis(total))
}

/// Displays a duration the way [`parse`] reads it, largest units first: `1h30m`, `250ms`.
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse("4h"), Ok(Duration::from_secs(14400)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn refuses_typos() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("5"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("5 sec"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("m5"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("-5s"), Err(DurationError::Syntax(_))));
        assert!(matches!(
            parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn displays_what_it_parses() {
        for s in ["1h30m", "250ms", "2d", "45m", "1m1s"] {
            let d = parse(s).expect("valid");
            assert_eq!(Human(d).to_string(), s);
        }
    }
}
