//! Netlink attributes (`struct nlattr` / `struct rtattr`, the same layout): one walker and one
//! builder for every netlink reader here (nftables, rtnetlink, nfnetlink_log), so the bounds
//! checks that keep hostile or truncated messages from panicking live in one place.

/// The attribute type without the `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` bits.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// Netlink rounds every attribute (and message) up to 4 bytes.
#[inline]
pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// An attribute whose header is cut short or whose length does not fit what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAttr {
    /// Where it starts, from the start of the walked buffer.
    pub offset: usize,
    /// The length its header claims (0 when not even a header is left).
    pub len: usize,
    /// The bytes left from its start.
    pub have: usize,
}

/// Walks attributes in order: `(type without flags, value)`. A malformed attribute yields one
/// `Err` and ends the walk; what came before it stands. See [`attrs`] and [`attrs_strict`].
#[derive(Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    offset: usize,
    strict_tail: bool,
}

/// Attributes of `buf`; fewer than 4 trailing bytes are padding, as the kernel's own
/// `nla_for_each_attr` takes them.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs {
        buf,
        offset: 0,
        strict_tail: false,
    }
}

/// Like [`attrs`], but 1 to 3 trailing bytes are an error (a message the kernel built never
/// has them, so they mean a cut).
pub fn attrs_strict(buf: &[u8]) -> Attrs<'_> {
    Attrs {
        buf,
        offset: 0,
        strict_tail: true,
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), BadAttr>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.buf;
        if b.len() < 4 {
            self.buf = &[];
            return (self.strict_tail && !b.is_empty()).then_some(Err(BadAttr {
                offset: self.offset,
                len: 0,
                have: b.len(),
            }));
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            self.buf = &[];
            return Some(Err(BadAttr {
                offset: self.offset,
                len,
                have: b.len(),
            }));
        }
        let step = align4(len).min(b.len());
        self.buf = &b[step..];
        self.offset += step;
        Some(Ok((ty, &b[4..len])))
    }
}

/// [`attrs`] that stops quietly at a malformed attribute, for readers that keep whatever
/// came before it.
pub fn attrs_ok(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    attrs(buf).map_while(Result::ok)
}

/// Appends one attribute (header, value, padding) to `buf`. Values longer than an attribute
/// can hold are a bug in the caller.
pub fn put_attr(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align4(buf.len()), 0);
}

/// One attribute as its own buffer (for building nested attributes and test messages).
pub fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(align4(4 + value.len()));
    put_attr(&mut b, ty, value);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_what_it_builds() {
        let mut b = attr(1, b"abc");
        put_attr(&mut b, 2 | 0x8000, &attr(7, &[9; 8]));
        put_attr(&mut b, 3, &[]);
        assert_eq!(b.len(), 8 + 16 + 4);
        let got: Vec<(u16, Vec<u8>)> = attrs(&b)
            .map(|a| a.map(|(t, v)| (t, v.to_vec())))
            .collect::<Result<_, _>>()
            .expect("well formed");
        assert_eq!(got[0], (1, b"abc".to_vec()));
        assert_eq!(got[1].0, 2, "flags masked");
        assert_eq!(attrs(&got[1].1).next(), Some(Ok((7, &[9u8; 8][..]))));
        assert_eq!(got[2], (3, vec![]));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn malformed_input_ends_the_walk_with_where_and_why() {
        let good = attr(1, b"abcd");
        // A length beyond the buffer.
        let mut b = good.clone();
        b.extend_from_slice(&[200, 0, 5, 0, 1, 2]);
        let r: Vec<_> = attrs(&b).collect();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            Err(BadAttr {
                offset: 8,
                len: 200,
                have: 6
            })
        );
        // A length below the header's own.
        let r: Vec<_> = attrs(&[2, 0, 1, 0, 0, 0]).collect();
        assert_eq!(
            r,
            [Err(BadAttr {
                offset: 0,
                len: 2,
                have: 6
            })]
        );
        // A short tail: padding, or an error when strict.
        let mut b = good.clone();
        b.extend_from_slice(&[0, 0]);
        assert_eq!(attrs(&b).count(), 1);
        let r: Vec<_> = attrs_strict(&b).collect();
        assert_eq!(
            r[1],
            Err(BadAttr {
                offset: 8,
                len: 0,
                have: 2
            })
        );
        // The last attribute's padding may be missing.
        let mut b = attr(1, b"ab");
        b.truncate(6);
        assert_eq!(attrs_strict(&b).collect::<Vec<_>>(), [Ok((1, &b"ab"[..]))]);
        assert_eq!(attrs(&[]).count(), 0);
    }
}
