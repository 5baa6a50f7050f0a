//! Just enough of the classic ROOT file: the file header, the top directory's keys, a key's
//! object bytes, the streamer infos, and the `ROOT::RNTuple` anchor object (big-endian, as every
//! classic TFile record).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::bytes::Cur;
use crate::error::{Fault, malformed, unsupported};
use crate::unzip::unzip;

/// A file opened for reads at offsets, each checked against its length.
pub(crate) struct Source {
    file: File,
    pub len: u64,
}

impl Source {
    pub(crate) fn new(file: File) -> Result<Self, Fault> {
        let len = file.metadata()?.len();
        Ok(Source { file, len })
    }

    /// `size` bytes at `offset`; a range past the end of the file is an error, never an
    /// allocation of the size a corrupt record claims.
    pub(crate) fn read(&mut self, offset: u64, size: u64, what: &str) -> Result<Vec<u8>, Fault> {
        let end = offset.checked_add(size);
        if end.is_none_or(|e| e > self.len) {
            return malformed(format!(
                "{what}: {size} bytes at offset {offset} lie past the end of the file ({} bytes)",
                self.len
            ));
        }
        self.file.seek(SeekFrom::Start(offset))?;
        let mut out = vec![0u8; size as usize];
        self.file.read_exact(&mut out)?;
        Ok(out)
    }
}

/// A key of the file's top directory.
#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub class: String,
    pub cycle: i16,
    n_bytes: u32,
    object_length: u32,
    key_length: u16,
    seek_key: u64,
}

/// The anchor: the RNTuple's format version and where its header and footer are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    pub version: [u16; 4],
    pub header: (u64, u64, u64),
    pub footer: (u64, u64, u64),
    pub max_key_size: u64,
}

fn key(c: &mut Cur) -> Result<Key, Fault> {
    let n_bytes = c.be_i32()?;
    let version = c.be_i16()?;
    let object_length = c.be_i32()?;
    let _datime = c.be_u32()?;
    let key_length = c.be_i16()?;
    let cycle = c.be_i16()?;
    let wide = version > 1000;
    let seek = |c: &mut Cur| -> Result<u64, Fault> {
        if wide {
            Ok(c.be_u64()?)
        } else {
            Ok(u64::from(c.be_u32()?))
        }
    };
    let seek_key = seek(c)?;
    let _seek_parent = seek(c)?;
    let class = c.tstring()?;
    let name = c.tstring()?;
    let _title = c.tstring()?;
    let (Ok(n_bytes), Ok(object_length), Ok(key_length)) = (
        u32::try_from(n_bytes),
        u32::try_from(object_length),
        u16::try_from(key_length),
    ) else {
        return malformed(format!("key `{name}` has negative sizes"));
    };
    if u32::from(key_length) > n_bytes {
        return malformed(format!("key `{name}` is shorter than its own header"));
    }
    Ok(Key {
        name,
        class,
        cycle,
        n_bytes,
        object_length,
        key_length,
        seek_key,
    })
}

/// The keys of the file's top directory.
pub(crate) fn keys(src: &mut Source) -> Result<Vec<Key>, Fault> {
    let head = src.read(0, 64.min(src.len), "file header")?;
    let mut c = Cur::new(&head, "file header");
    if c.take(4)? != b"root" {
        return malformed("not a ROOT file (no `root` magic)");
    }
    let version = c.be_i32()?;
    let begin = u64::from(c.be_u32()?);
    let wide = version >= 1_000_000;
    let _end = if wide {
        c.be_u64()?
    } else {
        u64::from(c.be_u32()?)
    };
    let _seek_free = if wide {
        c.be_u64()?
    } else {
        u64::from(c.be_u32()?)
    };
    let (_nbytes_free, _nfree) = (c.be_i32()?, c.be_i32()?);
    let nbytes_name = u64::from(c.be_u32()?);
    // The top directory record follows the file's own key and name.
    let dir = src.read(
        begin + nbytes_name,
        42.min(src.len.saturating_sub(begin + nbytes_name)),
        "top directory",
    )?;
    let mut d = Cur::new(&dir, "top directory");
    let dir_version = d.be_i16()?;
    let (_created, _modified) = (d.be_u32()?, d.be_u32()?);
    let (_nbytes_keys, _nbytes_name) = (d.be_i32()?, d.be_i32()?);
    let seek = |d: &mut Cur| -> Result<u64, Fault> {
        if dir_version > 1000 {
            Ok(d.be_u64()?)
        } else {
            Ok(u64::from(d.be_u32()?))
        }
    };
    let (_seek_dir, _seek_parent, seek_keys) = (seek(&mut d)?, seek(&mut d)?, seek(&mut d)?);
    if seek_keys == 0 {
        return Ok(Vec::new());
    }
    // The keys list is itself a key: its header, then the count and the keys' headers.
    let first = src.read(
        seek_keys,
        4.min(src.len.saturating_sub(seek_keys)),
        "keys list",
    )?;
    let n_bytes = Cur::new(&first, "keys list").be_i32()?;
    let n_bytes = u64::try_from(n_bytes).or_else(|_| malformed("keys list of negative size"))?;
    let list = src.read(seek_keys, n_bytes, "keys list")?;
    let mut c = Cur::new(&list, "keys list");
    let own = key(&mut c)?;
    let mut c = Cur::new(
        &list[usize::from(own.key_length).min(list.len())..],
        "keys list",
    );
    let n = c.be_i32()?;
    let n = usize::try_from(n).or_else(|_| malformed("negative number of keys"))?;
    // A key's header takes at least 26 bytes.
    let mut keys = Vec::with_capacity(n.min(c.remaining() / 26));
    for _ in 0..n {
        keys.push(key(&mut c)?);
    }
    Ok(keys)
}

impl Key {
    /// The key's header length: where ROOT's reference numbering of its object starts.
    pub(crate) fn header_length(&self) -> usize {
        usize::from(self.key_length)
    }
}

/// The object stored under `key`, decompressed: at most `max` bytes.
pub(crate) fn payload(src: &mut Source, key: &Key, max: u32, what: &str) -> Result<Vec<u8>, Fault> {
    let stored = key.n_bytes - u32::from(key.key_length);
    if key.object_length > max || stored > key.object_length {
        return malformed(format!(
            "{what}: {} bytes ({} stored), more than the {max} allowed or larger stored than read",
            key.object_length, stored
        ));
    }
    let Some(at) = key.seek_key.checked_add(u64::from(key.key_length)) else {
        return malformed(format!("{what}: its key points beyond any file"));
    };
    let raw = src.read(at, u64::from(stored), what)?;
    unzip(&raw, key.object_length as usize, what)
}

/// The key of the file's streamer infos (`fSeekInfo` in the file header); `None` when the file
/// has none.
pub(crate) fn streamer_key(src: &mut Source) -> Result<Option<Key>, Fault> {
    let head = src.read(0, 80.min(src.len), "file header")?;
    let mut c = Cur::new(&head, "file header");
    if c.take(4)? != b"root" {
        return malformed("not a ROOT file (no `root` magic)");
    }
    let version = c.be_i32()?;
    let wide = version >= 1_000_000;
    let seek = |c: &mut Cur| -> Result<u64, Fault> {
        if wide {
            Ok(c.be_u64()?)
        } else {
            Ok(u64::from(c.be_u32()?))
        }
    };
    let _begin = c.be_u32()?;
    let (_end, _seek_free) = (seek(&mut c)?, seek(&mut c)?);
    let (_nbytes_free, _nfree, _nbytes_name) = (c.be_i32()?, c.be_i32()?, c.be_i32()?);
    let (_units, _compress) = (c.u8()?, c.be_i32()?);
    let seek_info = seek(&mut c)?;
    let nbytes_info = u64::try_from(c.be_i32()?).unwrap_or(0);
    if seek_info == 0 || nbytes_info == 0 {
        return Ok(None);
    }
    let bytes = src.read(seek_info, nbytes_info.min(4096), "streamer infos' key")?;
    key(&mut Cur::new(&bytes, "streamer infos' key")).map(Some)
}

/// Reads the anchor object stored under `key`.
pub(crate) fn anchor(src: &mut Source, key: &Key) -> Result<Anchor, Fault> {
    let bytes = payload(src, key, 1 << 20, "RNTuple anchor")?;
    let mut c = Cur::new(&bytes, "RNTuple anchor");
    let count = c.be_u32()?;
    if count & 0x4000_0000 == 0 {
        return malformed("the RNTuple anchor has no byte count");
    }
    let _class_version = c.be_u16()?;
    let start = c.position();
    let version = [c.be_u16()?, c.be_u16()?, c.be_u16()?, c.be_u16()?];
    let mut next = || c.be_u64();
    let header = (next()?, next()?, next()?);
    let footer = (next()?, next()?, next()?);
    let max_key_size = next()?;
    let end = c.position();
    let checksum = c.be_u64()?;
    if xxhash_rust::xxh3::xxh3_64(&bytes[start..end]) != checksum {
        return malformed("the RNTuple anchor's checksum does not match");
    }
    if version[0] != 1 {
        return unsupported(format!(
            "RNTuple format {}.{}.{}.{}: this reader reads epoch 1 (ROOT 6.34 and later); \
             pre-release RNTuples (epoch 0) are not read",
            version[0], version[1], version[2], version[3]
        ));
    }
    Ok(Anchor {
        version,
        header,
        footer,
        max_key_size,
    })
}
