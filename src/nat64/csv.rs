//! The CSV dialect of the Jool client: comma separated, `\n` line ends, a field is quoted with
//! `"` only where its text may hold commas or newlines (`stats display --explain`, the
//! `mtu-plateaus` global). A quoted field may span lines. Jool never escapes a quote inside a
//! quoted field; a doubled `""` is still read as one quote, as RFC 4180 says.
//!
//! The session table, which must be fast and is never quoted, has its own splitter in
//! `session.rs`.

use super::ParseError;
use std::borrow::Cow;

/// Reads records one at a time from a whole output.
pub struct Records<'a> {
    rest: &'a str,
    line: usize,
}

/// One record and the line it starts on (1-based).
pub struct Record<'a> {
    pub line: usize,
    pub fields: Vec<Cow<'a, str>>,
}

impl<'a> Records<'a> {
    pub fn new(text: &'a str) -> Self {
        Records {
            rest: text,
            line: 0,
        }
    }

    /// The next record, `None` at the end. Empty lines are skipped.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, ParseError> {
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            self.line += 1;
            let start_line = self.line;
            let mut fields = Vec::new();
            let s = self.rest;
            let bytes = s.as_bytes();
            let mut i = 0;
            let mut field_start = 0;
            loop {
                if i < bytes.len() && bytes[i] == b'"' && i == field_start {
                    // Quoted field: runs to the next lone quote, across newlines.
                    let mut j = i + 1;
                    let mut owned: Option<String> = None;
                    let mut seg = j;
                    loop {
                        match bytes.get(j) {
                            None => return Err(ParseError::Unterminated { line: start_line }),
                            Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                                let o = owned.get_or_insert_with(String::new);
                                o.push_str(&s[seg..=j]);
                                j += 2;
                                seg = j;
                            }
                            Some(b'"') => break,
                            Some(b'\n') => {
                                self.line += 1;
                                j += 1;
                            }
                            Some(_) => j += 1,
                        }
                    }
                    let field = match owned {
                        Some(mut o) => {
                            o.push_str(&s[seg..j]);
                            Cow::Owned(o)
                        }
                        None => Cow::Borrowed(&s[i + 1..j]),
                    };
                    fields.push(field);
                    i = j + 1;
                    // After the closing quote: a separator, the line end or the end of text.
                    match bytes.get(i) {
                        Some(b',') => {
                            i += 1;
                            field_start = i;
                            continue;
                        }
                        Some(b'\n') => {
                            self.rest = &s[i + 1..];
                            break;
                        }
                        Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {
                            self.rest = &s[i + 2..];
                            break;
                        }
                        None => {
                            self.rest = "";
                            break;
                        }
                        Some(_) => {
                            return Err(ParseError::Field {
                                line: self.line,
                                column: "(quoted)",
                                value: super::clip(s.get(i..).unwrap_or("")),
                                what: "a separator after a closing quote",
                            })
                        }
                    }
                }
                match bytes[i..].iter().position(|&b| b == b',' || b == b'\n') {
                    Some(off) if bytes[i + off] == b',' => {
                        fields.push(Cow::Borrowed(&s[field_start..i + off]));
                        i += off + 1;
                        field_start = i;
                    }
                    Some(off) => {
                        let end = i + off;
                        fields.push(Cow::Borrowed(trim_cr(&s[field_start..end])));
                        self.rest = &s[end + 1..];
                        break;
                    }
                    None => {
                        fields.push(Cow::Borrowed(trim_cr(&s[field_start..])));
                        self.rest = "";
                        break;
                    }
                }
            }
            if fields.len() == 1 && fields[0].is_empty() {
                continue; // blank line
            }
            return Ok(Some(Record {
                line: start_line,
                fields,
            }));
        }
    }
}

fn trim_cr(s: &str) -> &str {
    s.strip_suffix('\r').unwrap_or(s)
}

/// Maps the columns a format needs to their index in its header, by name.
pub fn column_index(
    header: &[Cow<'_, str>],
    format: &'static str,
    names: &[&'static str],
) -> Result<Vec<usize>, ParseError> {
    names
        .iter()
        .map(|&name| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or(ParseError::MissingColumn {
                    format,
                    column: name,
                })
        })
        .collect()
}

/// Reads the header record of a format, with a typed error when stdout is empty or does not
/// start with a header that has `first` as its first column.
pub fn header<'a>(
    records: &mut Records<'a>,
    format: &'static str,
    first: &str,
) -> Result<Vec<Cow<'a, str>>, ParseError> {
    match records.next_record()? {
        None => Err(ParseError::Empty { expected: format }),
        Some(r) if r.fields.first().map(|f| f.trim()) == Some(first) => Ok(r.fields),
        Some(r) => Err(ParseError::Header {
            expected: format,
            found: super::clip(&r.fields.join(",")),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(usize, Vec<String>)> {
        let mut r = Records::new(text);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.line, rec.fields.iter().map(|f| f.to_string()).collect()));
        }
        out
    }

    #[test]
    fn plain_quoted_and_multiline() {
        let got = all("a,b\n1,\"x, y\"\n2,\"l1\nl2\"\n\n3,\"say \"\"hi\"\"\"\n4,");
        assert_eq!(
            got,
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["1".into(), "x, y".into()]),
                (3, vec!["2".into(), "l1\nl2".into()]),
                (6, vec!["3".into(), "say \"hi\"".into()]),
                (7, vec!["4".into(), "".into()]),
            ]
        );
    }

    #[test]
    fn unterminated_and_junk_after_quote_are_errors() {
        let mut r = Records::new("a\n\"open\nforever");
        r.next_record().unwrap();
        assert_eq!(
            r.next_record().err(),
            Some(ParseError::Unterminated { line: 2 })
        );
        let mut r = Records::new("\"a\"b,c\n");
        assert!(matches!(r.next_record(), Err(ParseError::Field { .. })));
        // Found by the jool_tables fuzz target: text after the quote that is not ASCII.
        let junk = format!("\"a\"x{}", "\u{cdad3}".repeat(20));
        let mut r = Records::new(&junk);
        assert!(matches!(r.next_record(), Err(ParseError::Field { .. })));
    }

    #[test]
    fn crlf_is_tolerated() {
        assert_eq!(
            all("a,b\r\n\"c\"\r\n"),
            vec![(1, vec!["a".into(), "b".into()]), (2, vec!["c".into()])]
        );
    }
}
