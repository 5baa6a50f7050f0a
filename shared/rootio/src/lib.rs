//! ROOT files without ROOT: RNTuples (below) and TGeo detector geometries ([`tgeo`]).
//!
//! The RNTuple reader reads binary format 1.0 (ROOT 6.34 and later).
//!
//! No other Rust library reads RNTuple, so this one is written here from ROOT's
//! `BinaryFormatSpecification.md`: the anchor in the file's top directory, the header, footer
//! and page-list envelopes (checksums verified), the field and column model (fundamental types,
//! `std::vector`/`ROOT::RVec` collections through their offset columns, projected fields such
//! as NanoAOD's `Muon_pt` over a collection of records, `RNTupleCardinality` counts), plain,
//! split, zigzag and delta encodings, and every compression ROOT writes (zlib, LZMA, LZ4, ZSTD).
//!
//! Data is read page by page: a [`FieldReader`] holds at most one decoded page per column it
//! reads, whatever the size of the file. What this reader does not know (a newer format
//! feature, a field type outside the supported set, quantised reals) is an error naming the
//! field, never a panic; every size in the file is checked before it sizes anything.
//!
//! ```no_run
//! let mut ntuple = alyx_rootio::RNTuple::open("nano.root".as_ref(), None)?;
//! let mut pt = ntuple.reader("Muon_pt")?;
//! while let Some(entry) = pt.next_entry(&mut ntuple)? {
//!     println!("{:?}", entry);
//! }
//! # Ok::<(), alyx_rootio::Error>(())
//! ```

mod bytes;
mod column;
mod error;
mod schema;
mod streamed;
mod tfile;
pub mod tgeo;
mod unzip;

use std::path::{Path, PathBuf};

use crate::column::ColumnType;
pub use crate::column::{Elements, Value};
pub use crate::error::{Error, Result};
use crate::error::{Fault, malformed, unsupported};
pub use crate::schema::Role;
use crate::schema::{Cluster, Schema};
pub use crate::tfile::Key;
use crate::tfile::Source;

/// The largest envelope or page this reader decompresses (ROOT's own pages are ≤ 1 MiB by
/// default, its envelopes a few MB): a bound on what a corrupt size can make it allocate.
const MAX_BLOCK: u64 = 1 << 30;

/// The most elements one page may hold (ROOT's pages hold up to 1 MiB, a few 10⁵ elements): a
/// bound on what a page's decoded values take, whatever its compressed size.
const MAX_PAGE_ELEMENTS: u64 = 1 << 24;

/// The most clusters an RNTuple may have (ROOT's are ~100 MB each).
const MAX_CLUSTERS: usize = 1 << 20;

/// The most elements one collection entry may hold before the file is taken as corrupt.
const MAX_ITEMS_PER_ENTRY: u64 = 1 << 24;

/// The names and classes of the objects in a ROOT file's top directory.
pub fn keys(path: &Path) -> Result<Vec<Key>> {
    let file = std::fs::File::open(path).map_err(|e| Fault::from(e).at(path))?;
    let mut src = Source::new(file).map_err(|f| f.at(path))?;
    tfile::keys(&mut src).map_err(|f| f.at(path))
}

/// What a top-level field holds, as far as this reader can present it.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// One number per entry, of this C++ type (`float`, `std::int32_t`, `bool`...).
    Number(String),
    /// A list of numbers per entry (`std::vector<T>`, `ROOT::VecOps::RVec<T>`), of item type T.
    List(String),
    /// Something this reader cannot present as numbers; the reason says what.
    Unsupported(String),
}

/// A top-level field: its name, C++ type and shape.
#[derive(Clone, Debug)]
pub struct FieldInfo {
    pub name: String,
    pub type_name: String,
    pub shape: Shape,
}

/// An RNTuple in a ROOT file, its schema and page lists read; data is read on demand.
pub struct RNTuple {
    path: PathBuf,
    src: Source,
    name: String,
    schema: Schema,
    clusters: Vec<Cluster>,
    entries: u64,
    version: [u16; 4],
    /// Each field's sub-fields, by field id (built once: a schema of n fields is read in O(n)).
    children: Vec<Vec<usize>>,
    /// Fields stored in several column representations.
    multi_representation: std::collections::HashSet<u32>,
}

impl std::fmt::Debug for RNTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RNTuple")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("entries", &self.entries)
            .field("clusters", &self.clusters.len())
            .finish()
    }
}

/// The C++ types of numbers this reader presents.
const NUMBER_TYPES: [&str; 13] = [
    "bool",
    "char",
    "std::int8_t",
    "std::uint8_t",
    "std::int16_t",
    "std::uint16_t",
    "std::int32_t",
    "std::uint32_t",
    "std::int64_t",
    "std::uint64_t",
    "float",
    "double",
    "std::byte",
];

impl RNTuple {
    /// Opens the RNTuple `name` in the ROOT file at `path` (the only one when `None`).
    pub fn open(path: &Path, name: Option<&str>) -> Result<Self> {
        Self::open_inner(path, name).map_err(|f| f.at(path))
    }

    fn open_inner(path: &Path, name: Option<&str>) -> Result<Self, Fault> {
        let mut src = Source::new(std::fs::File::open(path)?)?;
        let keys = tfile::keys(&mut src)?;
        let anchors: Vec<&Key> = keys.iter().filter(|k| is_anchor(&k.class)).collect();
        let key = match name {
            Some(n) => keys
                .iter()
                .find(|k| k.name == n)
                .ok_or_else(|| Fault::NotFound(format!("no object `{n}` in the file")))?,
            None => match anchors.as_slice() {
                [one] => one,
                [] => return Err(Fault::NotFound("the file holds no RNTuple".into())),
                many => {
                    let names: Vec<&str> = many.iter().map(|k| k.name.as_str()).collect();
                    return Err(Fault::NotFound(format!(
                        "the file holds several RNTuples ({}); name one",
                        names.join(", ")
                    )));
                }
            },
        };
        if key.class == "ROOT::Experimental::RNTuple" {
            return unsupported(format!(
                "`{}` is a pre-release RNTuple (ROOT::Experimental, before ROOT 6.34); rewrite it \
                 with ROOT 6.34 or later",
                key.name
            ));
        }
        if !is_anchor(&key.class) {
            return unsupported(format!("`{}` is a {}, not an RNTuple", key.name, key.class));
        }
        let anchor = tfile::anchor(&mut src, key)?;
        for (what, (_, packed, _)) in [("header", anchor.header), ("footer", anchor.footer)] {
            // uproot writes a maximum of 0: no limit, nothing split.
            if anchor.max_key_size != 0 && packed > anchor.max_key_size {
                return unsupported(format!(
                    "the {what} is split over several keys (larger than {} bytes)",
                    anchor.max_key_size
                ));
            }
        }
        let (seek, packed, length) = anchor.header;
        let header = envelope(&mut src, (seek, packed, length), schema::HEADER, "header")?;
        let header_checksum = header.checksum;
        let (name, mut schema) = schema::header(&mut header.payload())?;
        let footer = envelope(&mut src, anchor.footer, schema::FOOTER, "footer")?;
        let footer = schema::footer(&mut footer.payload(), &mut schema)?;
        if footer.header_checksum != header_checksum {
            return malformed("the footer belongs to another header (header checksum differs)");
        }
        let mut clusters = Vec::new();
        for group in &footer.groups {
            let link = group.page_list;
            let list = envelope(
                &mut src,
                (link.at.offset, link.at.size, link.length),
                schema::PAGE_LIST,
                "page list",
            )?;
            let found =
                schema::page_list(&mut list.payload(), header_checksum, schema.columns.len())?;
            if clusters.len() + found.len() > MAX_CLUSTERS {
                return malformed(format!("more than {MAX_CLUSTERS} clusters"));
            }
            if found.len() != group.clusters as usize {
                return malformed(format!(
                    "a cluster group announces {} clusters, its page list holds {}",
                    group.clusters,
                    found.len()
                ));
            }
            clusters.extend(found);
        }
        clusters.sort_by_key(|c| c.first_entry);
        let mut entries = 0u64;
        for c in &clusters {
            if c.first_entry != entries {
                return malformed(format!(
                    "clusters leave a gap or overlap at entry {entries} (next starts at {})",
                    c.first_entry
                ));
            }
            entries = entries
                .checked_add(c.entries)
                .ok_or_else(|| Fault::Malformed("entry count overflows".into()))?;
        }
        let mut children = vec![Vec::new(); schema.fields.len()];
        for (id, f) in schema.fields.iter().enumerate() {
            if f.parent as usize != id
                && let Some(list) = children.get_mut(f.parent as usize)
            {
                list.push(id);
            }
        }
        let mut first_representation = std::collections::HashMap::new();
        let mut multi_representation = std::collections::HashSet::new();
        for c in &schema.columns {
            if *first_representation
                .entry(c.field)
                .or_insert(c.representation)
                != c.representation
            {
                multi_representation.insert(c.field);
            }
        }
        Ok(RNTuple {
            path: path.to_path_buf(),
            src,
            name,
            schema,
            clusters,
            entries,
            version: anchor.version,
            children,
            multi_representation,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entries (events) in the RNTuple.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn clusters(&self) -> usize {
        self.clusters.len()
    }

    /// The format version the writer declared (epoch, major, minor, patch).
    pub fn version(&self) -> [u16; 4] {
        self.version
    }

    /// The top-level fields, in schema order, with what each holds.
    pub fn fields(&self) -> Vec<FieldInfo> {
        self.top_level()
            .map(|id| {
                let f = &self.schema.fields[id];
                FieldInfo {
                    name: f.name.clone(),
                    type_name: f.type_name.clone(),
                    shape: match self.plan(id) {
                        Ok(Plan::Leaf { .. }) => Shape::Number(f.type_name.clone()),
                        Ok(Plan::Cardinality { .. }) => {
                            Shape::Number(cardinality_type(&f.type_name).into())
                        }
                        Ok(Plan::List { item, .. }) => {
                            Shape::List(self.schema.fields[item].type_name.clone())
                        }
                        Err(Fault::Unsupported(why) | Fault::Malformed(why)) => {
                            Shape::Unsupported(why)
                        }
                        Err(other) => Shape::Unsupported(format!("{other:?}")),
                    },
                }
            })
            .collect()
    }

    fn top_level(&self) -> impl Iterator<Item = usize> + '_ {
        self.schema
            .fields
            .iter()
            .enumerate()
            .filter(|(id, f)| f.parent as usize == *id)
            .map(|(id, _)| id)
    }

    /// A reader of the top-level field `name`, positioned at entry 0.
    pub fn reader(&self, name: &str) -> Result<FieldReader> {
        let id = self
            .top_level()
            .find(|&id| self.schema.fields[id].name == name)
            .ok_or_else(|| {
                Fault::NotFound(format!("the RNTuple has no field `{name}`")).at(&self.path)
            })?;
        let plan = self.plan(id).map_err(|f| f.at(&self.path))?;
        let cursor = |column: u32| ColumnCursor::new(self, column, name);
        let kind = match plan {
            Plan::Leaf { column } => ReaderKind::Leaf(cursor(column)?),
            Plan::Cardinality { offsets } => {
                ReaderKind::Cardinality(Offsets::new(cursor(offsets)?))
            }
            Plan::List { offsets, item } => {
                let column = self.schema.fields[item].columns[0];
                ReaderKind::List(Offsets::new(cursor(offsets)?), cursor(column)?)
            }
        };
        Ok(FieldReader {
            name: name.to_owned(),
            kind,
            entry: 0,
        })
    }

    /// How field `id` is read, or why it cannot be.
    fn plan(&self, id: usize) -> Result<Plan, Fault> {
        let f = &self.schema.fields[id];
        let children = &self.children[id];
        let field = &f.name;
        let ty = &f.type_name;
        if f.repetition.is_some() {
            return unsupported(format!("field `{field}` ({ty}) is a fixed-size array"));
        }
        match f.role {
            schema::Role::Leaf if is_cardinality(ty) => {
                let column = self.principal(id, true)?;
                Ok(Plan::Cardinality { offsets: column })
            }
            schema::Role::Leaf if NUMBER_TYPES.contains(&ty.as_str()) && children.is_empty() => {
                Ok(Plan::Leaf {
                    column: self.principal(id, false)?,
                })
            }
            schema::Role::Collection => {
                let item = match children.as_slice() {
                    [one] => *one,
                    _ => {
                        return unsupported(format!(
                            "field `{field}` ({}) is a collection of records; read its projected \
                             fields instead",
                            if ty.is_empty() { "untyped" } else { ty }
                        ));
                    }
                };
                let it = &self.schema.fields[item];
                let has_grandchildren = !self.children[item].is_empty();
                if it.role != schema::Role::Leaf
                    || has_grandchildren
                    || !NUMBER_TYPES.contains(&it.type_name.as_str())
                {
                    return unsupported(format!(
                        "field `{field}` ({ty}) holds `{}` items; only collections of numbers are read",
                        it.type_name
                    ));
                }
                Ok(Plan::List {
                    offsets: self.principal(id, true)?,
                    item: {
                        self.principal(item, false)?;
                        item
                    },
                })
            }
            _ => unsupported(format!(
                "field `{field}` has type `{ty}`, which ALYX's RNTuple reader does not read \
                 (numbers and collections of numbers only)"
            )),
        }
    }

    /// The column that holds field `id`'s values (its first; representation 0), checked to be
    /// of a type this reader decodes and, for `index`, an offset column.
    fn principal(&self, id: usize, index: bool) -> Result<u32, Fault> {
        let f = &self.schema.fields[id];
        let Some(&column) = f.columns.first() else {
            return unsupported(format!("field `{}` has no column", f.name));
        };
        let c = &self.schema.columns[column as usize];
        let ty = ColumnType::from_code(c.kind, c.bits).map_err(|e| e.in_field(&f.name))?;
        if ty.index != index {
            return malformed(format!(
                "field `{}` ({}) is stored in a column of type {:#x}",
                f.name, f.type_name, c.kind
            ));
        }
        if c.first_element != 0 {
            return unsupported(format!(
                "field `{}` was added while the RNTuple was being written (a deferred column)",
                f.name
            ));
        }
        // Alternative representations of the same field, chosen per cluster.
        if self.multi_representation.contains(&c.field) {
            return unsupported(format!(
                "field `{}` has several column representations",
                f.name
            ));
        }
        Ok(column)
    }

    /// A page: read, checksum verified, decompressed, decoded.
    fn page(&mut self, column: u32, cluster: usize, page: usize) -> Result<Elements, Fault> {
        let c = &self.schema.columns[column as usize];
        let ty = ColumnType::from_code(c.kind, c.bits)?;
        let Some(desc) = self.clusters[cluster]
            .columns
            .get(column as usize)
            .and_then(|p| p.pages.get(page))
            .copied()
        else {
            return malformed(format!(
                "column {column} has no page {page} in cluster {cluster}"
            ));
        };
        let length = ty
            .page_bytes(desc.elements)
            .filter(|&n| n <= MAX_BLOCK && desc.elements <= MAX_PAGE_ELEMENTS)
            .ok_or_else(|| Fault::Malformed(format!("a page of {} elements", desc.elements)))?;
        if desc.size > MAX_BLOCK {
            return malformed(format!("a page of {} bytes", desc.size));
        }
        let stored = self.src.read(
            desc.offset,
            desc.size + if desc.checksum { 8 } else { 0 },
            "page",
        )?;
        let (data, sum) = stored.split_at(desc.size as usize);
        if desc.checksum {
            let expected = u64::from_le_bytes(sum.try_into().unwrap_or_default());
            if xxhash_rust::xxh3::xxh3_64(data) != expected {
                return malformed(format!(
                    "a page of column {column} in cluster {cluster} fails its checksum"
                ));
            }
        }
        let bytes = unzip::unzip(data, length as usize, "page")?;
        ty.decode(&bytes, desc.elements as usize)
    }
}

fn is_anchor(class: &str) -> bool {
    class == "ROOT::RNTuple"
}

fn is_cardinality(ty: &str) -> bool {
    ty.starts_with("ROOT::RNTupleCardinality<")
}

fn cardinality_type(ty: &str) -> &str {
    if ty.contains("uint64") {
        "std::uint64_t"
    } else {
        "std::uint32_t"
    }
}

enum Plan {
    Leaf { column: u32 },
    Cardinality { offsets: u32 },
    List { offsets: u32, item: usize },
}

/// An envelope's verified bytes.
struct Envelope {
    bytes: Vec<u8>,
    checksum: u64,
}

impl Envelope {
    /// The payload, after the type and length word and before the checksum.
    fn payload(&self) -> bytes::Cur<'_> {
        bytes::Cur::new(&self.bytes[8..self.bytes.len() - 8], "envelope")
    }
}

fn envelope(
    src: &mut Source,
    (seek, packed, length): (u64, u64, u64),
    kind: u16,
    what: &'static str,
) -> Result<Envelope, Fault> {
    if length > MAX_BLOCK || packed > MAX_BLOCK {
        return malformed(format!("a {what} envelope of {length} bytes"));
    }
    if length < 16 {
        return malformed(format!("a {what} envelope of {length} bytes is too short"));
    }
    let raw = src.read(seek, packed, what)?;
    let bytes = unzip::unzip(&raw, length as usize, what)?;
    let n = bytes.len();
    let word = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let checksum = u64::from_le_bytes(bytes[n - 8..].try_into().unwrap_or_default());
    if xxhash_rust::xxh3::xxh3_64(&bytes[..n - 8]) != checksum {
        return malformed(format!("the {what} envelope fails its checksum"));
    }
    if (word & 0xffff) as u16 != kind {
        return malformed(format!(
            "expected a {what} envelope, found envelope type {}",
            word & 0xffff
        ));
    }
    if word >> 16 != length {
        return malformed(format!(
            "the {what} envelope says it is {} bytes, its link says {length}",
            word >> 16
        ));
    }
    Ok(Envelope { bytes, checksum })
}

/// Reads one column's elements in order, page by page, across clusters.
struct ColumnCursor {
    column: u32,
    cluster: usize,
    page: usize,
    /// The page in hand and the next element in it.
    elements: Elements,
    at: usize,
    /// The cluster of the page in hand.
    current: usize,
    /// The field the column belongs to, for errors.
    field: String,
}

impl ColumnCursor {
    fn new(ntuple: &RNTuple, column: u32, field: &str) -> Result<Self> {
        for (i, c) in ntuple.clusters.iter().enumerate() {
            match c.columns.get(column as usize) {
                Some(p) if p.first_element.is_some() => {}
                _ => {
                    return Err(Fault::Unsupported(format!(
                        "field `{field}` has no data in cluster {i} (a suppressed or late column)"
                    ))
                    .at(&ntuple.path));
                }
            }
        }
        Ok(ColumnCursor {
            column,
            cluster: 0,
            page: 0,
            elements: Elements::Unsigned(Vec::new()),
            at: 0,
            current: 0,
            field: field.to_owned(),
        })
    }

    /// The next element and the cluster it belongs to; `None` at the end of the column.
    fn next(&mut self, ntuple: &mut RNTuple) -> Result<Option<(Value, usize)>, Fault> {
        while self.at >= self.elements.len() {
            let Some(cluster) = ntuple.clusters.get(self.cluster) else {
                return Ok(None);
            };
            let pages = cluster.columns[self.column as usize].pages.len();
            if self.page >= pages {
                self.cluster += 1;
                self.page = 0;
                continue;
            }
            self.elements = ntuple
                .page(self.column, self.cluster, self.page)
                .map_err(|f| f.in_field(&self.field))?;
            self.current = self.cluster;
            self.page += 1;
            self.at = 0;
        }
        let v = self.elements.get(self.at);
        self.at += 1;
        Ok(v.map(|v| (v, self.current)))
    }
}

/// An offset column read as per-entry counts (offsets restart at each cluster).
struct Offsets {
    cursor: ColumnCursor,
    previous: u64,
    cluster: usize,
}

impl Offsets {
    fn new(cursor: ColumnCursor) -> Self {
        Offsets {
            cursor,
            previous: 0,
            cluster: 0,
        }
    }

    fn next_count(&mut self, ntuple: &mut RNTuple, field: &str) -> Result<Option<u64>, Fault> {
        let Some((v, cluster)) = self.cursor.next(ntuple)? else {
            return Ok(None);
        };
        if cluster != self.cluster {
            self.cluster = cluster;
            self.previous = 0;
        }
        let Value::Unsigned(offset) = v else {
            return malformed(format!("field `{field}`: an offset column holds {v:?}"));
        };
        let count = offset
            .checked_sub(self.previous)
            .filter(|&c| c <= MAX_ITEMS_PER_ENTRY);
        let Some(count) = count else {
            return malformed(format!(
                "field `{field}`: collection offsets go from {} to {offset}",
                self.previous
            ));
        };
        self.previous = offset;
        Ok(Some(count))
    }
}

enum ReaderKind {
    Leaf(ColumnCursor),
    Cardinality(Offsets),
    List(Offsets, ColumnCursor),
}

/// One entry of a field.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    One(Value),
    Many(Vec<Value>),
}

/// Reads a top-level field entry by entry, holding at most one page per column.
pub struct FieldReader {
    name: String,
    kind: ReaderKind,
    entry: u64,
}

impl FieldReader {
    /// The next entry's value; `None` after the last entry.
    pub fn next_entry(&mut self, ntuple: &mut RNTuple) -> Result<Option<Entry>> {
        self.next_inner(ntuple).map_err(|f| f.at(&ntuple.path))
    }

    fn next_inner(&mut self, ntuple: &mut RNTuple) -> Result<Option<Entry>, Fault> {
        if self.entry >= ntuple.entries {
            return Ok(None);
        }
        let field = self.name.as_str();
        let (at, of) = (self.entry, ntuple.entries);
        let short = |what: &str| {
            Fault::Malformed(format!(
                "field `{field}`: its {what} end at entry {at} of {of}"
            ))
        };
        let entry = match &mut self.kind {
            ReaderKind::Leaf(c) => Entry::One(c.next(ntuple)?.ok_or_else(|| short("column"))?.0),
            ReaderKind::Cardinality(o) => Entry::One(Value::Unsigned(
                o.next_count(ntuple, field)?
                    .ok_or_else(|| short("offsets"))?,
            )),
            ReaderKind::List(o, items) => {
                let n = o
                    .next_count(ntuple, field)?
                    .ok_or_else(|| short("offsets"))?;
                let mut list = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    let (v, cluster) = items.next(ntuple)?.ok_or_else(|| short("items"))?;
                    if cluster != o.cluster {
                        return malformed(format!(
                            "field `{field}`: entry {at} takes items from another cluster"
                        ));
                    }
                    list.push(v);
                }
                Entry::Many(list)
            }
        };
        self.entry += 1;
        Ok(Some(entry))
    }
}
