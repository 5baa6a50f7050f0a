//! A bounds-checked reader over a byte slice: RNTuple's little-endian envelopes and frames, and
//! the big-endian records of the ROOT file around them. Every read past the end is an error.

use crate::error::{Fault, malformed};

#[derive(Clone, Copy)]
pub(crate) struct Cur<'a> {
    bytes: &'a [u8],
    at: usize,
    /// What is being read, for error messages ("header envelope", "page list").
    what: &'static str,
}

macro_rules! numbers {
    ($($le:ident $be:ident $t:ty),*) => {$(
        #[allow(dead_code)]
        pub(crate) fn $le(&mut self) -> Result<$t, Fault> {
            Ok(<$t>::from_le_bytes(self.array()?))
        }
        #[allow(dead_code)]
        pub(crate) fn $be(&mut self) -> Result<$t, Fault> {
            Ok(<$t>::from_be_bytes(self.array()?))
        }
    )*};
}

impl<'a> Cur<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Cur { bytes, at: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Moves to offset `at` of the bytes (at most their end).
    pub(crate) fn seek(&mut self, at: usize) -> Result<(), Fault> {
        if at > self.bytes.len() {
            return malformed(format!("{}: a seek past the end, to {at}", self.what));
        }
        self.at = at;
        Ok(())
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        if n > self.remaining() {
            return malformed(format!(
                "{}: {n} bytes wanted at offset {}, only {} left",
                self.what,
                self.at,
                self.remaining()
            ));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    numbers!(u8 be_u8 u8, u16 be_u16 u16, i16 be_i16 i16, u32 be_u32 u32, i32 be_i32 i32,
             u64 be_u64 u64, i64 be_i64 i64, f64 be_f64 f64);

    /// RNTuple's string: a u32 length, then UTF-8.
    pub(crate) fn string(&mut self) -> Result<String, Fault> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .or_else(|_| malformed(format!("{}: a string is not UTF-8", self.what)))
    }

    /// ROOT's TString: one length byte, or 255 then a big-endian i32 length.
    pub(crate) fn tstring(&mut self) -> Result<String, Fault> {
        let short = self.u8()?;
        let n = if short == 255 {
            usize::try_from(self.be_i32()?)
                .or_else(|_| malformed(format!("{}: negative string length", self.what)))?
        } else {
            usize::from(short)
        };
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    /// A record frame: its payload as a reader of its own; this reader moves past the whole
    /// frame, whatever a newer writer appended to it.
    pub(crate) fn record(&mut self) -> Result<Cur<'a>, Fault> {
        let size = self.i64()?;
        if size < 8 {
            return malformed(format!("{}: a record frame of size {size}", self.what));
        }
        self.frame_payload(size as u64, 8)
    }

    /// A list frame: the number of items and the payload holding them.
    pub(crate) fn list(&mut self) -> Result<(usize, Cur<'a>), Fault> {
        let size = self.i64()?;
        if size >= 0 || size.unsigned_abs() < 12 {
            return malformed(format!(
                "{}: expected a list frame, found a frame of size {size}",
                self.what
            ));
        }
        let count = self.u32()? as usize;
        let payload = self.frame_payload(size.unsigned_abs(), 12)?;
        // Every item takes at least one byte: a count beyond the payload is a lie, and would
        // otherwise size allocations.
        if count > payload.remaining() {
            return malformed(format!(
                "{}: a list frame claims {count} items in {} bytes",
                self.what,
                payload.remaining()
            ));
        }
        Ok((count, payload))
    }

    /// The payload of a frame of `size` bytes whose preamble (`preamble` bytes) was just read.
    fn frame_payload(&mut self, size: u64, preamble: usize) -> Result<Cur<'a>, Fault> {
        let rest = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_sub(preamble))
            .filter(|r| *r <= self.remaining());
        let Some(rest) = rest else {
            return malformed(format!(
                "{}: a frame of {size} bytes at offset {} overruns its envelope",
                self.what,
                self.at - preamble
            ));
        };
        Ok(Cur::new(self.take(rest)?, self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_bound_their_payload_and_skip_unknown_tails() {
        // A record frame of 8 + 4 + 2 bytes: a u32, then two bytes a newer writer added.
        let mut bytes = 14i64.to_le_bytes().to_vec();
        bytes.extend(7u32.to_le_bytes());
        bytes.extend([0xaa, 0xbb]);
        bytes.push(42);
        let mut c = Cur::new(&bytes, "test");
        let mut r = c.record().expect("record");
        assert_eq!(r.u32().expect("u32"), 7);
        assert_eq!(c.u8().expect("after the frame"), 42);
    }

    #[test]
    fn lies_are_errors_not_allocations() {
        // A list frame claiming 4 billion items in no bytes.
        let mut bytes = (-12i64).to_le_bytes().to_vec();
        bytes.extend(u32::MAX.to_le_bytes());
        assert!(Cur::new(&bytes, "test").list().is_err());
        // A record frame larger than what holds it.
        let bytes = 1000i64.to_le_bytes();
        assert!(Cur::new(&bytes, "test").record().is_err());
        // A string longer than the rest.
        let bytes = 99u32.to_le_bytes();
        assert!(Cur::new(&bytes, "test").string().is_err());
    }
}
