//! ROOT's compression blocks: a run of chunks, each a 9-byte header (algorithm, compressed and
//! uncompressed sizes) and the compressed bytes; stored unmodified when the two sizes agree.

use std::io::Read;

use crate::error::{Fault, malformed, unsupported};

/// Decompresses `src` into exactly `length` bytes.
pub(crate) fn unzip(src: &[u8], length: usize, what: &str) -> Result<Vec<u8>, Fault> {
    if src.len() == length {
        return Ok(src.to_vec());
    }
    let mut out = vec![0u8; length];
    let (mut from, mut to) = (0usize, 0usize);
    while to < length {
        let Some(head) = src.get(from..from + 9) else {
            return malformed(format!(
                "{what}: compressed data ends after {to} of {length} bytes"
            ));
        };
        let size = |b: &[u8]| usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
        let (packed, unpacked) = (size(&head[3..6]), size(&head[6..9]));
        let body = src.get(from + 9..from + 9 + packed);
        let target = out.get_mut(to..to + unpacked);
        let (Some(body), Some(target)) = (body, target) else {
            return malformed(format!(
                "{what}: a compressed chunk of {packed} → {unpacked} bytes overruns its block"
            ));
        };
        let got = match &head[..2] {
            b"ZL" => read_all(flate2::read::ZlibDecoder::new(body), target),
            b"XZ" => read_all(xz2::read::XzDecoder::new(body), target),
            b"ZS" => zstd::bulk::decompress_to_buffer(body, target).map_err(|e| e.to_string()),
            b"L4" => lz4_chunk(body, target),
            b"CS" => return unsupported(format!("{what}: ROOT's old (pre-zlib) compression")),
            other => {
                return malformed(format!(
                    "{what}: unknown compression algorithm {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        match got {
            Ok(n) if n == unpacked => {}
            Ok(n) => {
                return malformed(format!(
                    "{what}: a chunk decompressed to {n} bytes, its header says {unpacked}"
                ));
            }
            Err(e) => return malformed(format!("{what}: cannot decompress: {e}")),
        }
        from += 9 + packed;
        to += unpacked;
    }
    if from != src.len() {
        return malformed(format!(
            "{what}: {} bytes follow the compressed data",
            src.len() - from
        ));
    }
    Ok(out)
}

/// Reads the decoder's output into `target`, failing when it has more.
fn read_all(mut reader: impl Read, target: &mut [u8]) -> Result<usize, String> {
    reader.read_exact(target).map_err(|e| e.to_string())?;
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(target.len()),
        Ok(_) => Err("more data than announced".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// ROOT's LZ4 chunk: an XXH64 checksum of the compressed block, then the LZ4 block.
fn lz4_chunk(body: &[u8], target: &mut [u8]) -> Result<usize, String> {
    let (sum, block) = body.split_at_checked(8).ok_or("truncated LZ4 chunk")?;
    let expected = u64::from_be_bytes(sum.try_into().map_err(|_| "truncated LZ4 chunk")?);
    if xxhash_rust::xxh64::xxh64(block, 0) != expected {
        return Err("LZ4 chunk checksum mismatch".into());
    }
    let capacity = i32::try_from(target.len()).map_err(|_| "LZ4 chunk too large")?;
    lz4::block::decompress_to_buffer(block, Some(capacity), target).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(algorithm: &[u8; 3], body: &[u8], unpacked: usize) -> Vec<u8> {
        let mut out = algorithm.to_vec();
        for n in [body.len(), unpacked] {
            out.extend(&(n as u32).to_le_bytes()[..3]);
        }
        out.extend(body);
        out
    }

    #[test]
    fn every_codec_and_several_chunks() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        let (a, b) = data.split_at(7000);
        let zstd_a = zstd::bulk::compress(a, 3).unwrap();
        let mut zlib_b = Vec::new();
        {
            use std::io::Write;
            let mut w =
                flate2::write::ZlibEncoder::new(&mut zlib_b, flate2::Compression::default());
            w.write_all(b).unwrap();
            w.finish().unwrap();
        }
        let mut block = chunk(b"ZS\x01", &zstd_a, a.len());
        block.extend(chunk(b"ZL\x08", &zlib_b, b.len()));
        assert_eq!(unzip(&block, data.len(), "test").unwrap(), data);

        let lz = lz4::block::compress(&data, None, false).unwrap();
        let mut body = xxhash_rust::xxh64::xxh64(&lz, 0).to_be_bytes().to_vec();
        body.extend(&lz);
        let block = chunk(b"L4\x01", &body, data.len());
        assert_eq!(unzip(&block, data.len(), "test").unwrap(), data);
        let mut corrupt = block.clone();
        corrupt[12] ^= 1;
        assert!(unzip(&corrupt, data.len(), "test").is_err());
    }

    #[test]
    fn lies_about_sizes_are_errors() {
        let z = zstd::bulk::compress(&[1u8; 100], 3).unwrap();
        // Claims 200 bytes, holds 100.
        assert!(unzip(&chunk(b"ZS\x01", &z, 200), 200, "test").is_err());
        // Claims more compressed bytes than there are.
        let mut bad = chunk(b"ZS\x01", &z, 100);
        bad[3] = 0xff;
        assert!(unzip(&bad, 100, "test").is_err());
        assert!(unzip(b"QQ\x01\x01\x00\x00\x01\x00\x00x", 1, "test").is_err());
    }
}
