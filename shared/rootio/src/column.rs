//! Column element types and page decoding: little-endian values, split (byte-transposed)
//! encodings with zigzag for signed integers and delta for collection offsets, bit-packed
//! booleans, half floats.

use crate::error::{Fault, malformed, unsupported};

/// A page's values, widened: floats to f64 (exact from 16 and 32 bits), integers kept exact.
#[derive(Clone, Debug, PartialEq)]
pub enum Elements {
    Float(Vec<f64>),
    Signed(Vec<i64>),
    Unsigned(Vec<u64>),
}

impl Elements {
    pub fn len(&self) -> usize {
        match self {
            Elements::Float(v) => v.len(),
            Elements::Signed(v) => v.len(),
            Elements::Unsigned(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Elements::Float(v) => Value::Float(*v.get(i)?),
            Elements::Signed(v) => Value::Signed(*v.get(i)?),
            Elements::Unsigned(v) => Value::Unsigned(*v.get(i)?),
        })
    }
}

/// One element of a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Signed(i64),
    Unsigned(u64),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Float(x) => x,
            Value::Signed(x) => x as f64,
            Value::Unsigned(x) => x as f64,
        }
    }

    /// An exact integer (`None` for floats).
    pub fn as_i128(self) -> Option<i128> {
        match self {
            Value::Float(_) => None,
            Value::Signed(x) => Some(i128::from(x)),
            Value::Unsigned(x) => Some(i128::from(x)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interpret {
    Bit,
    Signed,
    Unsigned,
    Float,
    Half,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Plain,
    Split,
    SplitZigzag,
    SplitDelta,
}

/// How a column type is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnType {
    /// Bytes per element (0 for bit-packed booleans).
    width: usize,
    interpret: Interpret,
    encoding: Encoding,
    /// Index columns: offsets of collections.
    pub index: bool,
}

impl ColumnType {
    /// The column type with on-disk code `code` and `bits` bits per element.
    pub fn from_code(code: u16, bits: u16) -> Result<Self, Fault> {
        use Encoding::*;
        use Interpret::*;
        let (bits_expected, interpret, encoding, index) = match code {
            0x00 => (1, Bit, Plain, false),
            0x01 | 0x04 => (8, Unsigned, Plain, false),
            0x02 | 0x03 => (8, Signed, Plain, false),
            0x05 => (16, Signed, Plain, false),
            0x06 => (16, Unsigned, Plain, false),
            0x07 => (32, Signed, Plain, false),
            0x08 => (32, Unsigned, Plain, false),
            0x09 => (64, Signed, Plain, false),
            0x0A => (64, Unsigned, Plain, false),
            0x0B => (16, Half, Plain, false),
            0x0C => (32, Float, Plain, false),
            0x0D => (64, Float, Plain, false),
            0x0E => (32, Unsigned, Plain, true),
            0x0F => (64, Unsigned, Plain, true),
            0x11 => (16, Signed, SplitZigzag, false),
            0x12 => (16, Unsigned, Split, false),
            0x13 => (32, Signed, SplitZigzag, false),
            0x14 => (32, Unsigned, Split, false),
            0x15 => (64, Signed, SplitZigzag, false),
            0x16 => (64, Unsigned, Split, false),
            0x17 => (16, Half, Split, false),
            0x18 => (32, Float, Split, false),
            0x19 => (64, Float, Split, false),
            0x1A => (32, Unsigned, SplitDelta, true),
            0x1B => (64, Unsigned, SplitDelta, true),
            0x10 => return unsupported("variant (Switch) columns"),
            0x1C => return unsupported("truncated-mantissa reals (Real32Trunc columns)"),
            0x1D => return unsupported("quantised reals (Real32Quant columns)"),
            other => return unsupported(format!("column type {other:#x}, newer than this reader")),
        };
        if bits != bits_expected {
            return malformed(format!(
                "column type {code:#x} has {bits} bits per element, the format says {bits_expected}"
            ));
        }
        Ok(ColumnType {
            width: usize::from(bits_expected) / 8,
            interpret,
            encoding,
            index,
        })
    }

    /// Bytes that `n` elements take in an uncompressed page.
    pub fn page_bytes(&self, n: u64) -> Option<u64> {
        if self.interpret == Interpret::Bit {
            Some(n.div_ceil(8))
        } else {
            n.checked_mul(self.width as u64)
        }
    }

    /// Decodes an uncompressed page of `n` elements.
    pub fn decode(&self, bytes: &[u8], n: usize) -> Result<Elements, Fault> {
        let expected = self.page_bytes(n as u64);
        if expected != Some(bytes.len() as u64) {
            return malformed(format!(
                "a page of {n} elements holds {} bytes, expected {expected:?}",
                bytes.len()
            ));
        }
        if self.interpret == Interpret::Bit {
            let bits = (0..n).map(|i| u64::from(bytes[i / 8] >> (i % 8) & 1));
            return Ok(Elements::Unsigned(bits.collect()));
        }
        let w = self.width;
        let plain;
        let bytes = if self.encoding == Encoding::Plain {
            bytes
        } else {
            // Split: all first bytes, then all second bytes...
            let mut out = vec![0u8; bytes.len()];
            for (b, plane) in bytes.chunks_exact(n.max(1)).enumerate().take(w) {
                for (i, byte) in plane.iter().enumerate() {
                    out[i * w + b] = *byte;
                }
            }
            plain = out;
            &plain
        };
        let raw = bytes.chunks_exact(w).map(|c| {
            let mut le = [0u8; 8];
            le[..w].copy_from_slice(c);
            u64::from_le_bytes(le)
        });
        Ok(match (self.interpret, self.encoding) {
            (Interpret::Float, _) if w == 4 => {
                Elements::Float(raw.map(|u| f64::from(f32::from_bits(u as u32))).collect())
            }
            (Interpret::Float, _) => Elements::Float(raw.map(f64::from_bits).collect()),
            (Interpret::Half, _) => Elements::Float(raw.map(|u| half_to_f64(u as u16)).collect()),
            (Interpret::Signed, Encoding::SplitZigzag) => {
                Elements::Signed(raw.map(|u| ((u >> 1) as i64) ^ -((u & 1) as i64)).collect())
            }
            (Interpret::Signed, _) => {
                // Sign-extend from the element's width.
                let shift = 64 - 8 * w as u32;
                Elements::Signed(raw.map(|u| ((u << shift) as i64) >> shift).collect())
            }
            (Interpret::Unsigned, Encoding::SplitDelta) => {
                let mut sum = 0u64;
                Elements::Unsigned(
                    raw.map(|d| {
                        sum = sum.wrapping_add(d);
                        sum
                    })
                    .collect(),
                )
            }
            (Interpret::Unsigned | Interpret::Bit, _) => Elements::Unsigned(raw.collect()),
        })
    }
}

/// IEEE-754 half precision to f64 (exact).
fn half_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let mantissa = f64::from(h & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f64.powi(-24),
        0x1f if mantissa == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encodes as ROOT's writer does: little-endian, then zigzag/delta, then split.
    fn encode(code: u16, width: usize, values: &[u64]) -> Vec<u8> {
        let mut transformed: Vec<u64> = values.to_vec();
        if matches!(code, 0x1A | 0x1B) {
            let mut prev = 0u64;
            for v in &mut transformed {
                let d = v.wrapping_sub(prev);
                prev = *v;
                *v = d;
            }
        }
        let plain: Vec<u8> = transformed
            .iter()
            .flat_map(|v| v.to_le_bytes()[..width].to_vec())
            .collect();
        if code < 0x11 {
            return plain;
        }
        let n = values.len();
        let mut split = vec![0u8; plain.len()];
        for i in 0..n {
            for b in 0..width {
                split[b * n + i] = plain[i * width + b];
            }
        }
        split
    }

    fn zigzag(x: i64) -> u64 {
        ((x << 1) ^ (x >> 63)) as u64
    }

    proptest! {
        #[test]
        fn split_zigzag_int32_round_trips(values in proptest::collection::vec(any::<i32>(), 0..200)) {
            let raw: Vec<u64> = values.iter().map(|&v| zigzag(i64::from(v)) & 0xffff_ffff).collect();
            let t = ColumnType::from_code(0x13, 32).unwrap();
            let got = t.decode(&encode(0x13, 4, &raw), values.len()).unwrap();
            prop_assert_eq!(got, Elements::Signed(values.iter().map(|&v| i64::from(v)).collect()));
        }

        #[test]
        fn split_delta_index64_round_trips(mut offsets in proptest::collection::vec(0u64..1 << 40, 0..200)) {
            offsets.sort_unstable();
            let t = ColumnType::from_code(0x1B, 64).unwrap();
            let got = t.decode(&encode(0x1B, 8, &offsets), offsets.len()).unwrap();
            prop_assert_eq!(got, Elements::Unsigned(offsets));
        }

        #[test]
        fn split_real32_round_trips(values in proptest::collection::vec(any::<f32>(), 0..200)) {
            let raw: Vec<u64> = values.iter().map(|v| u64::from(v.to_bits())).collect();
            let t = ColumnType::from_code(0x18, 32).unwrap();
            let Elements::Float(got) = t.decode(&encode(0x18, 4, &raw), values.len()).unwrap() else {
                panic!("floats")
            };
            for (g, v) in got.iter().zip(&values) {
                prop_assert!(g.to_bits() == f64::from(*v).to_bits() || (g.is_nan() && v.is_nan()));
            }
        }

        #[test]
        fn plain_int16_sign_extends(values in proptest::collection::vec(any::<i16>(), 0..100)) {
            let raw: Vec<u64> = values.iter().map(|&v| u64::from(v as u16)).collect();
            let t = ColumnType::from_code(0x05, 16).unwrap();
            let got = t.decode(&encode(0x05, 2, &raw), values.len()).unwrap();
            prop_assert_eq!(got, Elements::Signed(values.iter().map(|&v| i64::from(v)).collect()));
        }
    }

    #[test]
    fn bits_are_packed_least_significant_first() {
        let t = ColumnType::from_code(0x00, 1).unwrap();
        let got = t.decode(&[0b0000_0101, 0b1], 9).unwrap();
        assert_eq!(got, Elements::Unsigned(vec![1, 0, 1, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert!(half_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn a_page_of_the_wrong_size_is_an_error() {
        let t = ColumnType::from_code(0x0C, 32).unwrap();
        assert!(t.decode(&[0; 7], 2).is_err());
        assert!(ColumnType::from_code(0x0C, 16).is_err());
        assert!(ColumnType::from_code(0x1D, 12).is_err());
    }
}
