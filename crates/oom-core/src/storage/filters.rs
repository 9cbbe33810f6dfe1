//! Decoding of raw HDF5 chunks outside the HDF5 library, so that chunks can
//! be inflated on all cores (the bundled HDF5 is not thread-safe and
//! serialises every call behind one lock).

use std::io::Read;

/// A filter in a dataset's pipeline that we can undo ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Deflate,
    Shuffle { elem_size: usize },
    Lzf,
    Fletcher32,
}

/// HDF5 filter ids (H5Zpublic.h; lzf is registered as 32000).
pub const H5Z_FILTER_DEFLATE: i32 = 1;
pub const H5Z_FILTER_SHUFFLE: i32 = 2;
pub const H5Z_FILTER_FLETCHER32: i32 = 3;
pub const H5Z_FILTER_LZF: i32 = 32000;

/// Undo `pipeline` (in write order) on one chunk. `filter_mask` bit i set
/// means filter i was skipped for this chunk. `expected` is the decoded size.
pub fn decode_chunk(
    raw: Vec<u8>,
    pipeline: &[Filter],
    filter_mask: u32,
    expected: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut buf = raw;
    for (i, f) in pipeline.iter().enumerate().rev() {
        if filter_mask & (1 << i) != 0 {
            continue;
        }
        buf = match *f {
            Filter::Deflate => inflate(&buf, expected)?,
            Filter::Lzf => lzf::decompress(&buf, expected.max(1))
                .map_err(|e| format!("corrupt lzf chunk: {e:?}"))?,
            Filter::Shuffle { elem_size } => unshuffle(&buf, elem_size),
            Filter::Fletcher32 => {
                if buf.len() < 4 {
                    return Err("corrupt fletcher32 chunk".into());
                }
                let n = buf.len() - 4;
                let stored = u32::from_le_bytes([buf[n], buf[n + 1], buf[n + 2], buf[n + 3]]);
                let sum = fletcher32(&buf[..n]);
                // HDF5 also accepts the byte-swapped sum (files of HDF5 < 1.6.3).
                let swapped = ((sum & 0x00ff_00ff) << 8) | ((sum & 0xff00_ff00) >> 8);
                if stored != sum && stored != swapped {
                    return Err("chunk fails its Fletcher32 checksum (corrupt data)".into());
                }
                buf.truncate(n);
                buf
            }
        };
    }
    if buf.len() < expected {
        return Err(format!(
            "chunk decoded to {} bytes, expected {expected}",
            buf.len()
        ));
    }
    Ok(buf)
}

/// HDF5's Fletcher32 checksum (`H5_checksum_fletcher32`): 16-bit big-endian
/// words, sums reduced every 360 words.
fn fletcher32(data: &[u8]) -> u32 {
    let (mut sum1, mut sum2) = (0u32, 0u32);
    for block in data[..data.len() & !1].chunks(720) {
        for w in block.chunks_exact(2) {
            sum1 += (u32::from(w[0]) << 8) | u32::from(w[1]);
            sum2 += sum1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if data.len() % 2 == 1 {
        sum1 += u32::from(data[data.len() - 1]) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    (sum2 << 16) | sum1
}

/// zlib-inflate into a buffer of the decoded size (the common case) and
/// fall back to a growing read if the stream is longer. libdeflate decodes
/// a whole buffer ~1.75× as fast as zlib-rs on h5ad chunks: for a gzip file
/// inflating is most of every pass over X.
fn inflate(src: &[u8], expected: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = vec![0u8; expected];
    match libdeflater::Decompressor::new().zlib_decompress(src, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(libdeflater::DecompressionError::BadData) => {
            Err("corrupt deflate chunk: invalid zlib stream or checksum".into())
        }
        Err(libdeflater::DecompressionError::InsufficientSpace) => {
            let mut out = Vec::with_capacity(expected);
            flate2::read::ZlibDecoder::new(src)
                .read_to_end(&mut out)
                .map_err(|e| format!("corrupt deflate chunk: {e}"))?;
            Ok(out)
        }
    }
}

/// Inverse of HDF5's byte shuffle: byte j of every element was stored in
/// plane j.
fn unshuffle(src: &[u8], elem_size: usize) -> Vec<u8> {
    if elem_size <= 1 {
        return src.to_vec();
    }
    let n = src.len() / elem_size;
    let mut out = vec![0u8; src.len()];
    for j in 0..elem_size {
        let plane = &src[j * n..(j + 1) * n];
        for (i, &b) in plane.iter().enumerate() {
            out[i * elem_size + j] = b;
        }
    }
    // Trailing bytes that do not form a whole element are left unshuffled.
    let tail = n * elem_size;
    out[tail..].copy_from_slice(&src[tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_inverts_shuffle() {
        let data: Vec<u8> = (0u8..24).collect();
        let mut shuffled = vec![0u8; 24];
        for i in 0..6 {
            for j in 0..4 {
                shuffled[j * 6 + i] = data[i * 4 + j];
            }
        }
        assert_eq!(unshuffle(&shuffled, 4), data);
    }

    #[test]
    fn deflate_round_trip_and_corruption() {
        use std::io::Write;
        let data: Vec<u8> = (0..1000u32).flat_map(u32::to_le_bytes).collect();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(
            decode_chunk(z.clone(), &[Filter::Deflate], 0, data.len()).unwrap(),
            data
        );
        let bad = z[..z.len() / 2].to_vec();
        assert!(decode_chunk(bad, &[Filter::Deflate], 0, data.len()).is_err());
    }
}
