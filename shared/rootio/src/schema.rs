//! The envelopes: header (fields and columns), footer (schema extension, cluster groups) and
//! page lists (clusters and the locations of their pages), parsed from their decompressed,
//! checksum-verified bytes.

use crate::bytes::Cur;
use crate::error::{Fault, malformed, unsupported};

/// What a field is in the schema tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leaf,
    Collection,
    Record,
    Variant,
    Streamer,
}

#[derive(Clone, Debug)]
pub struct FieldDesc {
    pub name: String,
    pub type_name: String,
    pub parent: u32,
    pub role: Role,
    /// Fixed-size arrays (`std::array`, `std::bitset`): the repetition count.
    pub repetition: Option<u64>,
    /// The physical columns that hold this field's data, its own or (projected) aliases, in
    /// order.
    pub columns: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct ColumnDesc {
    pub kind: u16,
    pub bits: u16,
    pub field: u32,
    pub representation: u16,
    /// Deferred columns: the first element the column stores (those before read as zero).
    pub first_element: i64,
}

/// One page of a column in a cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageDesc {
    pub elements: u64,
    pub checksum: bool,
    pub offset: u64,
    pub size: u64,
}

/// One column's pages in one cluster.
#[derive(Clone, Debug)]
pub(crate) struct ColumnPages {
    /// Index of the cluster's first element of this column; `None` when the column is
    /// suppressed in this cluster (another representation holds the data).
    pub first_element: Option<u64>,
    pub pages: Vec<PageDesc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Cluster {
    pub first_entry: u64,
    pub entries: u64,
    /// Indexed by physical column id; missing for columns the cluster's page list predates.
    pub columns: Vec<ColumnPages>,
}

/// An envelope link or a locator: where a block is and how large it is on disk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Locator {
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct EnvelopeLink {
    pub length: u64,
    pub at: Locator,
}

#[derive(Default, Debug)]
pub struct Schema {
    pub fields: Vec<FieldDesc>,
    pub columns: Vec<ColumnDesc>,
}

pub(crate) struct Footer {
    pub header_checksum: u64,
    pub groups: Vec<ClusterGroup>,
}

pub(crate) struct ClusterGroup {
    pub clusters: u32,
    pub page_list: EnvelopeLink,
}

/// Envelope type ids.
pub(crate) const HEADER: u16 = 1;
pub(crate) const FOOTER: u16 = 2;
pub(crate) const PAGE_LIST: u16 = 3;

/// Feature flags: a run of u64s, continued while the top bit is set. This reader knows no
/// feature, so any bit set is a format it cannot read.
fn feature_flags(c: &mut Cur) -> Result<(), Fault> {
    for _ in 0..64 {
        let word = c.u64()?;
        if word & !(1 << 63) != 0 {
            return unsupported(format!(
                "the RNTuple uses format features this reader does not know (feature flags {word:#x}); \
                 it was written by a newer ROOT"
            ));
        }
        if word >> 63 == 0 {
            return Ok(());
        }
    }
    malformed("endless feature flags")
}

pub(crate) fn locator(c: &mut Cur) -> Result<Locator, Fault> {
    let head = c.i32()?;
    if head >= 0 {
        return Ok(Locator {
            size: head as u64,
            offset: c.u64()?,
        });
    }
    // ROOT writes the negation of (type << 24 | reserved << 16 | size), the size counting
    // this word too (RNTupleSerializer::SerializeLocator).
    let raw = head.unsigned_abs();
    let own_size = (raw & 0xffff) as usize;
    let kind = (raw >> 24) & 0xff;
    if own_size < 4 {
        return malformed(format!("a locator of size {own_size}"));
    }
    let mut payload = Cur::new(c.take(own_size - 4)?, "locator");
    match kind {
        1 => Ok(Locator {
            size: payload.u64()?,
            offset: payload.u64()?,
        }),
        other => unsupported(format!(
            "a page or envelope stored outside the file (locator type {other:#x}); only in-file \
             locators are read"
        )),
    }
}

fn envelope_link(c: &mut Cur) -> Result<EnvelopeLink, Fault> {
    Ok(EnvelopeLink {
        length: c.u64()?,
        at: locator(c)?,
    })
}

fn role(code: u16, name: &str) -> Result<Role, Fault> {
    Ok(match code {
        0 => Role::Leaf,
        1 => Role::Collection,
        2 => Role::Record,
        3 => Role::Variant,
        4 => Role::Streamer,
        other => {
            return unsupported(format!(
                "field `{name}` has structural role {other}, unknown to this reader"
            ));
        }
    })
}

/// The four lists of a schema description (the header's, or the footer's extension), appended
/// to `schema`; field ids continue from those already there.
fn schema_description(c: &mut Cur, schema: &mut Schema) -> Result<(), Fault> {
    let (n, mut fields) = c.list()?;
    for _ in 0..n {
        let mut f = fields.record()?;
        let (_version, _type_version) = (f.u32()?, f.u32()?);
        let parent = f.u32()?;
        let role_code = f.u16()?;
        let flags = f.u16()?;
        let name = f.string()?;
        let type_name = f.string()?;
        let _type_alias = f.string()?;
        let _description = f.string()?;
        let repetition = if flags & 0x01 != 0 {
            Some(f.u64()?)
        } else {
            None
        };
        // Projected fields (flag 0x02) name their source field next; their data comes
        // through alias columns, attached below.
        schema.fields.push(FieldDesc {
            role: role(role_code, &name)?,
            name,
            type_name,
            parent,
            repetition,
            columns: Vec::new(),
        });
    }
    let (n, mut columns) = c.list()?;
    for _ in 0..n {
        let mut r = columns.record()?;
        let kind = r.u16()?;
        let bits = r.u16()?;
        let field = r.u32()?;
        let flags = r.u16()?;
        let representation = r.u16()?;
        let first_element = if flags & 0x01 != 0 { r.i64()? } else { 0 };
        // A value range (flag 0x02) only matters to quantised reals, which are refused later.
        let id = schema.columns.len() as u32;
        schema.columns.push(ColumnDesc {
            kind,
            bits,
            field,
            representation,
            first_element,
        });
        attach(schema, field, id)?;
    }
    let (n, mut aliases) = c.list()?;
    for _ in 0..n {
        let mut r = aliases.record()?;
        let physical = r.u32()?;
        let field = r.u32()?;
        if physical as usize >= schema.columns.len() {
            return malformed(format!(
                "alias column of field {field} points to column {physical}, which does not exist"
            ));
        }
        attach(schema, field, physical)?;
    }
    // Extra type information (streamer infos) is not needed to read the supported types.
    let _ = c.list()?;
    Ok(())
}

fn attach(schema: &mut Schema, field: u32, column: u32) -> Result<(), Fault> {
    match schema.fields.get_mut(field as usize) {
        Some(f) => {
            f.columns.push(column);
            Ok(())
        }
        None => malformed(format!(
            "column {column} belongs to field {field}, which does not exist"
        )),
    }
}

/// The header envelope's payload (after the envelope's type and length).
pub(crate) fn header(c: &mut Cur) -> Result<(String, Schema), Fault> {
    feature_flags(c)?;
    let name = c.string()?;
    let _description = c.string()?;
    let _writer = c.string()?;
    let mut schema = Schema::default();
    schema_description(c, &mut schema)?;
    Ok((name, schema))
}

pub(crate) fn footer(c: &mut Cur, schema: &mut Schema) -> Result<Footer, Fault> {
    feature_flags(c)?;
    let header_checksum = c.u64()?;
    let mut extension = c.record()?;
    if extension.remaining() > 0 {
        schema_description(&mut extension, schema)?;
    }
    let (n, mut list) = c.list()?;
    let mut groups = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let mut g = list.record()?;
        let (_min_entry, _span) = (g.u64()?, g.u64()?);
        let clusters = g.u32()?;
        groups.push(ClusterGroup {
            clusters,
            page_list: envelope_link(&mut g)?,
        });
    }
    Ok(Footer {
        header_checksum,
        groups,
    })
}

/// A page list envelope's payload: its clusters with their pages.
pub(crate) fn page_list(
    c: &mut Cur,
    header_checksum: u64,
    columns: usize,
) -> Result<Vec<Cluster>, Fault> {
    if c.u64()? != header_checksum {
        return malformed("a page list belongs to another header (header checksum differs)");
    }
    let (n, mut summaries) = c.list()?;
    let mut clusters = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let mut s = summaries.record()?;
        let first_entry = s.u64()?;
        let word = s.u64()?;
        if (word >> 56) & 0x01 != 0 {
            return unsupported("sharded clusters (a future RNTuple feature)");
        }
        clusters.push(Cluster {
            first_entry,
            entries: word & ((1 << 56) - 1),
            columns: Vec::new(),
        });
    }
    let (m, mut per_cluster) = c.list()?;
    if m != n {
        return malformed(format!(
            "a page list describes {n} clusters but holds pages for {m}"
        ));
    }
    for cluster in &mut clusters {
        let (k, mut per_column) = per_cluster.list()?;
        if k > columns {
            return malformed(format!(
                "a cluster has pages for {k} columns, the schema has {columns}"
            ));
        }
        for _ in 0..k {
            let (p, mut pages) = per_column.list()?;
            let mut list = Vec::with_capacity(p.min(1024));
            for _ in 0..p {
                let elements = pages.i32()?;
                let at = locator(&mut pages)?;
                list.push(PageDesc {
                    elements: u64::from(elements.unsigned_abs()),
                    checksum: elements < 0,
                    offset: at.offset,
                    size: at.size,
                });
            }
            let first = pages.i64()?;
            let first_element = if first < 0 {
                None
            } else {
                let _compression = pages.u32()?;
                Some(first as u64)
            };
            if first_element.is_none() && !list.is_empty() {
                return malformed("a suppressed column has pages");
            }
            cluster.columns.push(ColumnPages {
                first_element,
                pages: list,
            });
        }
    }
    Ok(clusters)
}
