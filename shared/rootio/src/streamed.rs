//! Objects stored the classic way (`TKey` → `TBufferFile`), read by the streamer infos the file
//! carries, as ROOT's `ReadClassBuffer` and uproot do: each object is its class's members in the
//! order its `TStreamerInfo` lists them, bases first, nested objects with byte counts, pointers
//! as class tags and back-references. Enough for TGeo geometries; the collection classes with
//! hand-written streamers (`TObjArray`, `TList`, `THashList`, `TObjString`) are read by hand.
//!
//! Every count is checked against the bytes left, nesting is bounded, and an object of a class
//! the file has no streamer for is skipped by its byte count, never guessed at.

use std::collections::HashMap;
use std::rc::Rc;

use crate::bytes::Cur;
use crate::error::{Fault, malformed, unsupported};

/// `TBufferFile`'s flags and offsets.
const BYTE_COUNT: u32 = 0x4000_0000;
const CLASS_MASK: u32 = 0x8000_0000;
const NEW_CLASS: u32 = 0xffff_ffff;
const MAP_OFFSET: usize = 2;
/// `TObject::kIsReferenced`: a process id follows the bits.
const IS_REFERENCED: u32 = 1 << 4;

/// How deeply objects may nest (a TGeo hierarchy nests ~4 levels per geometry level).
const MAX_DEPTH: usize = 1024;
/// The most objects one key may hold.
const MAX_OBJECTS: usize = 1 << 22;

/// Classes whose contents nothing here uses: skipped by their byte counts.
const SKIPPED: &[&str] = &[
    "TGeoVoxelFinder",
    "TGeoElement",
    "TGeoElementRN",
    "TGeoIsotope",
    "TGeoElementTable",
    "TGeoParallelWorld",
    "TGeoPhysicalNode",
    "TGeoOverlap",
    "TGeoTrack",
];

/// An object read: its class and members (its bases' members flattened in, as uproot shows them).
#[derive(Debug, Default)]
pub(crate) struct Obj {
    pub class: String,
    pub members: Vec<(Rc<str>, Val)>,
}

impl Obj {
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.members
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v)
    }

    pub fn num(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Val::Num(x) => Some(*x),
            _ => None,
        }
    }

    pub fn nums(&self, name: &str) -> Option<&[f64]> {
        match self.get(name)? {
            Val::Nums(x) => Some(x),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn obj(&self, name: &str) -> Option<Id> {
        match self.get(name)? {
            Val::Obj(id) => *id,
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> &[Option<Id>] {
        match self.get(name) {
            Some(Val::List(items)) => items,
            _ => &[],
        }
    }
}

/// A member's value. Numbers of every width are kept as f64 (exact for the 32-bit integers and
/// bit sets TGeo stores).
#[derive(Debug)]
pub(crate) enum Val {
    Num(f64),
    Nums(Vec<f64>),
    Text(String),
    /// A pointer or an embedded object; `None`: null, or an object that was skipped.
    Obj(Option<Id>),
    /// A collection's items.
    List(Vec<Option<Id>>),
}

pub(crate) type Id = usize;

/// One element of a streamer info: a member or a base class.
#[derive(Debug, Clone)]
struct Element {
    name: Rc<str>,
    kind: ElementKind,
    /// ROOT's `EReadWrite` type code.
    code: i32,
    array_length: usize,
    type_name: String,
    count_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ElementKind {
    Base,
    Other,
}

#[derive(Debug)]
struct StreamerInfo {
    version: i32,
    elements: Vec<Element>,
}

/// The streamer infos of a file, by class name.
#[derive(Default)]
pub(crate) struct Streamers(HashMap<String, Vec<StreamerInfo>>);

impl Streamers {
    /// Reads the `TList` of `TStreamerInfo`s stored at the file header's `fSeekInfo`.
    pub(crate) fn read(bytes: &[u8], key_length: usize) -> Result<Self, Fault> {
        let none = Streamers::default();
        let mut r = Reader::new(bytes, key_length, &none);
        let list = r.top("TList")?;
        let mut out = Streamers::default();
        for item in r.arena[list].list("items").iter().flatten() {
            let info = &r.arena[*item];
            if info.class != "TStreamerInfo" {
                continue;
            }
            let (Some(name), Some(version)) = (info.text("fName"), info.num("fClassVersion"))
            else {
                continue;
            };
            let mut elements = Vec::new();
            for e in info
                .obj("fElements")
                .map_or(&[][..], |l| r.arena[l].list("items"))
                .iter()
                .flatten()
            {
                let e = &r.arena[*e];
                elements.push(Element {
                    name: e.text("fName").unwrap_or_default().into(),
                    kind: if e.class == "TStreamerBase" {
                        ElementKind::Base
                    } else {
                        ElementKind::Other
                    },
                    code: e.num("fType").unwrap_or(-1.0) as i32,
                    array_length: e.num("fArrayLength").unwrap_or(0.0).max(0.0) as usize,
                    type_name: e.text("fTypeName").unwrap_or_default().to_owned(),
                    count_name: e.text("fCountName").unwrap_or_default().to_owned(),
                });
            }
            out.0
                .entry(name.to_owned())
                .or_default()
                .push(StreamerInfo {
                    version: version as i32,
                    elements,
                });
        }
        Ok(out)
    }

    fn get(&self, class: &str, version: i32) -> Option<&StreamerInfo> {
        let infos = self.0.get(class)?;
        infos
            .iter()
            .find(|i| i.version == version)
            .or_else(|| (infos.len() == 1).then(|| &infos[0]))
    }
}

/// Reads the objects of one key's buffer into an arena.
pub(crate) struct Reader<'a> {
    c: Cur<'a>,
    /// Where the buffer starts in ROOT's numbering of references: after the key's header.
    key_length: usize,
    streamers: &'a Streamers,
    /// Classes and objects seen, by their reference tag.
    classes: HashMap<usize, Rc<str>>,
    objects: HashMap<usize, Id>,
    pub arena: Vec<Obj>,
    depth: usize,
}

/// A version header: the version and, when the writer gave one, where the object ends.
struct Header {
    version: i32,
    end: Option<usize>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], key_length: usize, streamers: &'a Streamers) -> Self {
        Reader {
            c: Cur::new(bytes, "object"),
            key_length,
            streamers,
            classes: HashMap::new(),
            objects: HashMap::new(),
            arena: Vec::new(),
            depth: 0,
        }
    }

    /// The object a key holds, of class `class`, streamed from the buffer's start.
    pub(crate) fn top(&mut self, class: &str) -> Result<Id, Fault> {
        let id = self.new_obj(class)?;
        self.class_body(class, id)?;
        Ok(id)
    }

    /// The reference number of the current position.
    fn here(&self) -> usize {
        self.c.position() + self.key_length
    }

    /// `TBuffer::ReadVersion`.
    fn header(&mut self) -> Result<Header, Fault> {
        let start = self.c.position();
        let first = self.c.be_u32()?;
        if first & BYTE_COUNT != 0 {
            let count = (first & !BYTE_COUNT) as usize;
            let end = start + 4 + count;
            if count < 2 || end > start + 4 + self.c.remaining() {
                return malformed(format!(
                    "an object's byte count ({count}) overruns its buffer"
                ));
            }
            let version = i32::from(self.c.be_u16()? & 0x3fff);
            Ok(Header {
                version,
                end: Some(end),
            })
        } else {
            // No byte count: the first two bytes were the version.
            self.c.seek(start)?;
            let version = i32::from(self.c.be_u16()? & 0x3fff);
            Ok(Header { version, end: None })
        }
    }

    /// Moves to the end a header announced, checking that the members read did not pass it.
    fn finish(&mut self, header: &Header, class: &str) -> Result<(), Fault> {
        if let Some(end) = header.end {
            if self.c.position() > end {
                return malformed(format!(
                    "`{class}` (version {}) is longer than its byte count",
                    header.version
                ));
            }
            self.c.seek(end)?;
        }
        Ok(())
    }

    fn new_obj(&mut self, class: &str) -> Result<Id, Fault> {
        if self.arena.len() >= MAX_OBJECTS {
            return malformed(format!("more than {MAX_OBJECTS} objects in one key"));
        }
        self.arena.push(Obj {
            class: class.to_owned(),
            members: Vec::new(),
        });
        Ok(self.arena.len() - 1)
    }

    fn set(&mut self, id: Id, name: impl Into<Rc<str>>, val: Val) {
        self.arena[id].members.push((name.into(), val));
    }

    /// `TBufferFile::ReadObjectAny`: a pointer — null, a reference to an object read before, or
    /// a new object with its class (new, or referenced).
    pub(crate) fn object_any(&mut self) -> Result<Option<Id>, Fault> {
        let beg = self.here();
        let first = self.c.be_u32()?;
        let (tag, start, end) = if first & BYTE_COUNT == 0 || first == NEW_CLASS {
            (first, 0, None)
        } else {
            let count = (first & !BYTE_COUNT) as usize;
            if count < 4 || count > self.c.remaining() {
                return malformed(format!(
                    "a pointer's byte count ({count}) overruns its buffer"
                ));
            }
            let start = self.here();
            let end = self.c.position() + count;
            (self.c.be_u32()?, start, Some(end))
        };
        if tag & CLASS_MASK == 0 {
            // A reference to an object read before (0: null).
            return Ok(if tag == 0 {
                None
            } else {
                self.objects.get(&(tag as usize)).copied()
            });
        }
        let class: Rc<str> = if tag == NEW_CLASS {
            let name = self.c_string()?;
            let name: Rc<str> = name.into();
            let at = if end.is_some() {
                start + MAP_OFFSET
            } else {
                self.classes.len() + self.objects.len() + 1
            };
            self.classes.insert(at, name.clone());
            name
        } else {
            let at = (tag & !CLASS_MASK) as usize;
            match self.classes.get(&at) {
                Some(name) => name.clone(),
                None => {
                    // A class introduced inside something skipped: skip this object too.
                    let Some(end) = end else {
                        return malformed(format!(
                            "an object of an unknown class (reference {at}) with no byte count"
                        ));
                    };
                    self.c.seek(end)?;
                    return Ok(None);
                }
            }
        };
        let skip = SKIPPED.contains(&&*class)
            || !(self.streamers.0.contains_key(&*class) || is_hand_read(&class));
        if skip {
            return match end {
                Some(end) => {
                    self.c.seek(end)?;
                    Ok(None)
                }
                None => unsupported(format!(
                    "an object of class `{class}`, which the file has no streamer for"
                )),
            };
        }
        let id = self.new_obj(&class)?;
        // Mapped before its members are read: they may point back at it (a node's mother).
        let at = if end.is_some() {
            beg + MAP_OFFSET
        } else {
            self.classes.len() + self.objects.len() + 1
        };
        self.objects.insert(at, id);
        self.class_body(&class, id)?;
        if let Some(end) = end {
            if self.c.position() > end {
                return malformed(format!("`{class}` is longer than its byte count"));
            }
            self.c.seek(end)?;
        }
        Ok(Some(id))
    }

    /// A class name as `ReadObjectAny` writes it: NUL-terminated.
    fn c_string(&mut self) -> Result<String, Fault> {
        let mut out = Vec::new();
        loop {
            match self.c.u8()? {
                0 => break,
                b if out.len() < 1024 => out.push(b),
                _ => return malformed("a class name of more than 1024 bytes"),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The members of `class` into object `id`, from its version header on.
    fn class_body(&mut self, class: &str, id: Id) -> Result<(), Fault> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return malformed(format!("objects nested more than {MAX_DEPTH} deep"));
        }
        let out = self.class_body_inner(class, id);
        self.depth -= 1;
        out
    }

    fn class_body_inner(&mut self, class: &str, id: Id) -> Result<(), Fault> {
        match class {
            "TObject" => return self.tobject(id),
            "TString" => {
                let s = self.c.tstring()?;
                self.set(id, "fString", Val::Text(s));
                return Ok(());
            }
            _ => {}
        }
        let header = self.header()?;
        match class {
            "TNamed" | "TObjString" => {
                self.tobject(id)?;
                let name = self.c.tstring()?;
                self.set(id, "fName", Val::Text(name));
                if class == "TNamed" {
                    let title = self.c.tstring()?;
                    self.set(id, "fTitle", Val::Text(title));
                }
            }
            "TObjArray" => {
                if header.version > 2 {
                    self.tobject(id)?;
                }
                if header.version > 1 {
                    let name = self.c.tstring()?;
                    self.set(id, "fName", Val::Text(name));
                }
                let n = self.count()?;
                let _lower_bound = self.c.be_i32()?;
                let items = self.items(n, false)?;
                self.set(id, "items", Val::List(items));
            }
            "TList" | "THashList" => {
                if header.version > 3 {
                    self.tobject(id)?;
                }
                let name = self.c.tstring()?;
                self.set(id, "fName", Val::Text(name));
                let n = self.count()?;
                let items = self.items(n, true)?;
                self.set(id, "items", Val::List(items));
            }
            "TStreamerInfo" => {
                self.class_body("TNamed", id)?;
                let checksum = self.c.be_u32()?;
                self.set(id, "fCheckSum", Val::Num(f64::from(checksum)));
                let version = self.c.be_i32()?;
                self.set(id, "fClassVersion", Val::Num(f64::from(version)));
                let elements = self.object_any()?;
                self.set(id, "fElements", Val::Obj(elements));
            }
            "TStreamerElement" => {
                self.class_body("TNamed", id)?;
                for name in ["fType", "fSize", "fArrayLength", "fArrayDim"] {
                    let v = self.c.be_i32()?;
                    self.set(id, name, Val::Num(f64::from(v)));
                }
                let n = if header.version == 1 {
                    self.count()?
                } else {
                    5
                };
                for _ in 0..n {
                    self.c.be_i32()?;
                }
                let type_name = self.c.tstring()?;
                // A bool written as an unsigned char by older writers.
                if matches!(self.arena[id].num("fType"), Some(11.0))
                    && matches!(type_name.as_str(), "Bool_t" | "bool")
                {
                    self.arena[id].members.retain(|(n, _)| &**n != "fType");
                    self.set(id, "fType", Val::Num(18.0));
                }
                self.set(id, "fTypeName", Val::Text(type_name));
            }
            c if c.starts_with("TStreamer") => {
                self.class_body("TStreamerElement", id)?;
                match c {
                    "TStreamerBase" if header.version > 2 => {
                        self.c.be_i32()?;
                    }
                    "TStreamerBasicPointer" | "TStreamerLoop" => {
                        self.c.be_i32()?;
                        let count = self.c.tstring()?;
                        self.set(id, "fCountName", Val::Text(count));
                        self.c.tstring()?;
                    }
                    _ => {}
                }
            }
            _ => self.by_streamer(class, header.version, id)?,
        }
        self.finish(&header, class)
    }

    /// A collection's size, checked against the bytes left (every item takes at least one).
    fn count(&mut self) -> Result<usize, Fault> {
        let n = self.c.be_i32()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.c.remaining() => Ok(n),
            _ => malformed(format!(
                "a collection of {n} items in {} bytes",
                self.c.remaining()
            )),
        }
    }

    fn items(&mut self, n: usize, with_options: bool) -> Result<Vec<Option<Id>>, Fault> {
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.object_any()?);
            if with_options {
                self.c.tstring()?;
            }
        }
        Ok(items)
    }

    fn tobject(&mut self, id: Id) -> Result<(), Fault> {
        let header = self.header()?;
        let unique_id = self.c.be_u32()?;
        let bits = self.c.be_u32()?;
        if bits & IS_REFERENCED != 0 {
            self.c.be_u16()?;
        }
        self.set(id, "fUniqueID", Val::Num(f64::from(unique_id)));
        self.set(id, "fBits", Val::Num(f64::from(bits)));
        // TObject's header carries no byte count; `finish` checks one if a writer put it.
        self.finish(&header, "TObject")
    }

    /// `ReadClassBuffer`: the members as the class's streamer info lists them.
    fn by_streamer(&mut self, class: &str, version: i32, id: Id) -> Result<(), Fault> {
        let streamers = self.streamers;
        let Some(info) = streamers.get(class, version) else {
            return unsupported(format!(
                "`{class}` version {version}: the file has no streamer for it"
            ));
        };
        for e in &info.elements {
            self.element(class, e, id)?;
        }
        Ok(())
    }

    fn element(&mut self, class: &str, e: &Element, id: Id) -> Result<(), Fault> {
        let what =
            |e: &Element| format!("`{class}::{}` ({}, type {})", e.name, e.type_name, e.code);
        if e.kind == ElementKind::Base {
            // A base class's members join the object's own.
            return self.class_body(&e.name, id);
        }
        let val = match e.code {
            1..=19 => Val::Num(self.basic(e.code).map_err(|f| in_member(f, &what(e)))?),
            21..=39 => {
                let n = e.array_length;
                if n.saturating_mul(basic_size(e.code - 20)) > self.c.remaining() {
                    return malformed(format!("{} overruns its object", what(e)));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.basic(e.code - 20)?);
                }
                Val::Nums(v)
            }
            41..=59 => {
                // `Double_t *fX; //[fN]`: a flag byte, then the counted values.
                let n = self.arena[id]
                    .num(&e.count_name)
                    .filter(|n| *n >= 0.0)
                    .map(|n| n as usize);
                let Some(n) = n else {
                    return malformed(format!(
                        "{}: its count `{}` was not read before it",
                        what(e),
                        e.count_name
                    ));
                };
                let present = self.c.u8()?;
                if present == 0 {
                    Val::Nums(Vec::new())
                } else {
                    if n.saturating_mul(basic_size(e.code - 40)) > self.c.remaining() {
                        return malformed(format!("{}: {n} values overrun the object", what(e)));
                    }
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(self.basic(e.code - 40)?);
                    }
                    Val::Nums(v)
                }
            }
            // Objects by value, and pointers marked `//->` (never null): the object itself.
            61 | 62 | 63 | 68 => {
                let name = e.type_name.trim_end_matches('*').trim();
                let child = self.new_obj(name)?;
                self.class_body(name, child)?;
                Val::Obj(Some(child))
            }
            // Pointers that may be null or shared: a class tag or a reference.
            64 | 69 => Val::Obj(self.object_any()?),
            65 => Val::Text(self.c.tstring()?),
            66 | 67 => {
                let name = if e.code == 66 { "TObject" } else { "TNamed" };
                let child = self.new_obj(name)?;
                self.class_body(name, child)?;
                Val::Obj(Some(child))
            }
            83 | 84 => {
                let mut items = Vec::with_capacity(e.array_length.min(1024));
                for _ in 0..e.array_length {
                    if e.code == 83 {
                        let name = e.type_name.trim_end_matches('*').trim();
                        let child = self.new_obj(name)?;
                        self.class_body(name, child)?;
                        items.push(Some(child));
                    } else {
                        items.push(self.object_any()?);
                    }
                }
                Val::List(items)
            }
            300..=399 | 500 | 501 => {
                // STL containers and members with their own streamers: skipped by their byte
                // counts (nothing TGeo draws is in one).
                let header = self.header()?;
                if header.end.is_none() {
                    return unsupported(format!("{} without a byte count", what(e)));
                }
                self.finish(&header, class)?;
                return Ok(());
            }
            _ => return unsupported(format!("{}: not a member type this reader reads", what(e))),
        };
        self.set(id, e.name.clone(), val);
        Ok(())
    }

    fn basic(&mut self, code: i32) -> Result<f64, Fault> {
        Ok(match code {
            1 => f64::from(self.c.u8()? as i8),
            11 | 18 => f64::from(self.c.u8()?),
            2 => f64::from(self.c.be_i16()?),
            12 => f64::from(self.c.be_u16()?),
            3 | 6 => f64::from(self.c.be_i32()?),
            13 | 15 => f64::from(self.c.be_u32()?),
            4 | 16 => self.c.be_i64()? as f64,
            14 | 17 => self.c.be_u64()? as f64,
            5 => f64::from(f32::from_bits(self.c.be_u32()?)),
            8 => self.c.be_f64()?,
            // Double32_t without a range is a float on disk.
            9 => f64::from(f32::from_bits(self.c.be_u32()?)),
            _ => return unsupported(format!("basic type {code}")),
        })
    }
}

fn basic_size(code: i32) -> usize {
    match code {
        1 | 11 | 18 => 1,
        2 | 12 => 2,
        4 | 14 | 16 | 17 | 8 => 8,
        _ => 4,
    }
}

fn is_hand_read(class: &str) -> bool {
    matches!(
        class,
        "TObject" | "TNamed" | "TObjString" | "TObjArray" | "TList" | "THashList"
    ) || class.starts_with("TStreamer")
}

fn in_member(f: Fault, what: &str) -> Fault {
    match f {
        Fault::Unsupported(w) => Fault::Unsupported(format!("{what}: {w}")),
        Fault::Malformed(w) => Fault::Malformed(format!("{what}: {w}")),
        other => other,
    }
}
