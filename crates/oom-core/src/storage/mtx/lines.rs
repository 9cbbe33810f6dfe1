//! One chunk of MatrixMarket text parsed into entries: plain `i j v` lines
//! in one scan, anything else through a tokenizer that words the errors.

use super::{Buckets, Entry, Field, Header};
use crate::storage::array::to_usize;

/// A parsed chunk: entries grouped by bucket, and its line count.
pub(super) struct Parsed {
    pub by_bucket: Vec<Vec<u8>>,
    pub lines: u64,
    pub entries: u64,
}

/// A parse failure at `line` lines into a chunk.
pub(super) struct ChunkError {
    pub line: u64,
    pub msg: String,
}

fn parse_int(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 19 {
        return None;
    }
    tok.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

fn parse_value(tok: &[u8], field: Field) -> Option<f32> {
    if field == Field::Integer {
        let (neg, digits) = match tok.first() {
            Some(b'-') => (true, &tok[1..]),
            Some(b'+') => (false, &tok[1..]),
            _ => (false, tok),
        };
        if let Some(v) = parse_int(digits) {
            // numpy's int64 → float32 cast rounds to nearest, as `as` does.
            return Some(if neg { -(v as f32) } else { v as f32 });
        }
    }
    // scipy parses reals as float64, then scanpy casts them to float32.
    std::str::from_utf8(tok)
        .ok()?
        .parse::<f64>()
        .ok()
        .map(|v| v as f32)
}

/// The digits at `b[*at..]` as a number (at most 19, as [`parse_int`]).
#[inline]
fn digits(b: &[u8], at: &mut usize) -> Option<u64> {
    let start = *at;
    let mut v = 0u64;
    while let Some(&c) = b.get(*at).filter(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        *at += 1;
    }
    (*at > start && *at - start <= 19).then_some(v)
}

/// `i j` or `i j v` with single spaces and an integer `v` (or none, for
/// `pattern`): what writers print. Anything else (`None`) goes through
/// [`general_line`], which also words the errors.
#[inline]
fn plain_line(line: &[u8], field: Field) -> Option<(u64, u64, f32)> {
    let mut at = 0;
    let i = digits(line, &mut at)?;
    (line.get(at) == Some(&b' ')).then_some(())?;
    at += 1;
    let j = digits(line, &mut at)?;
    let val = match field {
        Field::Pattern => 1.0,
        Field::Integer => {
            (line.get(at) == Some(&b' ')).then_some(())?;
            at += 1;
            let neg = line.get(at) == Some(&b'-');
            at += usize::from(neg);
            // numpy's int64 → float32 cast rounds to nearest, as `as` does.
            #[allow(clippy::cast_precision_loss)]
            let v = digits(line, &mut at)? as f32;
            if neg {
                -v
            } else {
                v
            }
        }
        Field::Real => return None,
    };
    (at == line.len()).then_some((i, j, val))
}

/// Any other line: `Ok(None)` for a blank line or a comment, else its
/// coordinates and value, or what is wrong with it.
fn general_line(
    line: &[u8],
    h: &Header,
    want: usize,
) -> std::result::Result<Option<(u64, u64, f32)>, String> {
    let mut toks = line
        .split(|c| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty());
    let Some(first) = toks.next() else {
        return Ok(None);
    };
    if first.starts_with(b"%") {
        return Ok(None);
    }
    let (second, third) = (toks.next(), toks.next());
    let extra = toks.next();
    let got = 1
        + usize::from(second.is_some())
        + usize::from(third.is_some())
        + usize::from(extra.is_some());
    if got != want {
        return Err(format!(
            "expected {want} fields, found {}: {:?}",
            got,
            String::from_utf8_lossy(line).trim_end()
        ));
    }
    let (Some(i), Some(j)) = (parse_int(first), second.and_then(parse_int)) else {
        return Err(format!(
            "bad coordinates: {:?}",
            String::from_utf8_lossy(line).trim_end()
        ));
    };
    if i == 0 || i > h.nrows || j == 0 || j > h.ncols {
        // the caller words it
        return Ok(Some((i, j, 0.0)));
    }
    let val = match third {
        None => 1.0,
        Some(t) => parse_value(t, h.field)
            .ok_or_else(|| format!("bad value {:?}", String::from_utf8_lossy(t)))?,
    };
    Ok(Some((i, j, val)))
}

pub(super) fn parse_chunk(
    text: &[u8],
    h: &Header,
    transpose: bool,
    buckets: &Buckets,
) -> std::result::Result<Parsed, ChunkError> {
    let mut by_bucket = vec![Vec::new(); to_usize(buckets.n)];
    let (mut lines, mut entries) = (0u64, 0u64);
    let want = if h.field == Field::Pattern { 2 } else { 3 };
    for line in text.split(|&c| c == b'\n') {
        lines += 1;
        let err = |msg: String| ChunkError { line: lines, msg };
        let (i, j, val) = match plain_line(line, h.field) {
            Some(t) => t,
            None => match general_line(line, h, want).map_err(err)? {
                Some(t) => t,
                None => continue,
            },
        };
        if i == 0 || i > h.nrows || j == 0 || j > h.ncols {
            return Err(err(format!(
                "entry ({i}, {j}) outside the {} × {} matrix of the header",
                h.nrows, h.ncols
            )));
        }
        // both < 2^32, checked with the header
        let (i, j) = ((i - 1) as u32, (j - 1) as u32);
        let e = if transpose {
            Entry {
                row: j,
                col: i,
                val,
            }
        } else {
            Entry {
                row: i,
                col: j,
                val,
            }
        };
        e.put(&mut by_bucket[buckets.of(e.row)]);
        entries += 1;
    }
    // `split` yields one piece after the chunk's final newline.
    Ok(Parsed {
        by_bucket,
        lines: lines - 1,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain-line parser agrees with the general one wherever it answers.
    #[test]
    fn plain_lines_parse_as_general_lines() {
        let h = |field| Header {
            field,
            nrows: 100,
            ncols: 100,
            nnz: 1,
            lines: 2,
        };
        let lines: [&[u8]; 10] = [
            b"1 2 3",
            b"1 2 -0",
            b"01 002 0003",
            b"12 7 16777217",
            b"1 2 99999999999999999999",
            b"1  2 3",
            b"1\t2\t3",
            b"1 2 3\r",
            b"1 2 +3",
            b"1 2",
        ];
        for field in [Field::Integer, Field::Pattern, Field::Real] {
            let want = if field == Field::Pattern { 2 } else { 3 };
            for line in lines {
                if let Some(p) = plain_line(line, field) {
                    let g = general_line(line, &h(field), want).unwrap().unwrap();
                    assert_eq!((p.0, p.1, p.2.to_bits()), (g.0, g.1, g.2.to_bits()));
                }
            }
        }
        assert!(plain_line(b"1 2 3", Field::Integer).is_some());
        assert!(plain_line(b"1 2 3\r", Field::Integer).is_none());
    }
}
