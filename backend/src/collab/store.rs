//! Notebooks in PostgreSQL: the snapshot and the changes since, access grants, and the
//! notifications that carry stored changes and presence to every instance.

use alyx_analysis::notebook::Notebook;
use sqlx::{PgPool, Row};

use crate::error::{Error, Result};

/// What a user may do with a notebook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Write,
    Owner,
}

impl Access {
    pub fn parse(s: &str) -> Access {
        match s {
            "read" => Access::Read,
            "write" => Access::Write,
            "owner" => Access::Owner,
            _ => Access::None,
        }
    }

    pub fn can_write(self) -> bool {
        self >= Access::Write
    }
}

#[derive(Clone, Debug)]
pub struct Info {
    pub id: i64,
    pub title: String,
    pub owner: String,
    /// The asking user's.
    pub access: Access,
    pub updated_ms: i64,
    /// (user, access) of the others, for the owner.
    pub grants: Vec<(String, Access)>,
}

/// Stores a new notebook made by `owner`.
pub async fn create(pool: &PgPool, owner: &str, title: &str) -> Result<i64> {
    let title = title.trim();
    if title.is_empty() || title.len() > 200 {
        return Err(Error::InvalidArgument(
            "a notebook needs a title of 1 to 200 characters".into(),
        ));
    }
    let mut nb = Notebook::new(title, owner);
    let hashes = all_hashes(&mut nb)?;
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notebooks (owner, title, snapshot) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(owner)
    .bind(title)
    .bind(nb.save())
    .fetch_one(&mut *tx)
    .await?;
    attest(&mut tx, id, owner, &hashes).await?;
    tx.commit().await?;
    Ok(id)
}

/// Records `author` as the one who sent the changes `hashes` of notebook `id` (the first
/// sender of a change is its author).
async fn attest(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    author: &str,
    hashes: &[impl AsRef<str>],
) -> Result<()> {
    let hashes: Vec<&str> = hashes.iter().map(AsRef::as_ref).collect();
    sqlx::query(
        "INSERT INTO notebook_authors (notebook_id, hash, author) \
         SELECT $1, h, $3 FROM unnest($2::text[]) AS h ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&hashes)
    .bind(author)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The authors alyxd recorded for notebook `id`'s changes, by hash.
pub async fn authors(pool: &PgPool, id: i64) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT hash, author FROM notebook_authors WHERE notebook_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// `user`'s access to notebook `id`; NotFound when there is no such notebook.
pub async fn access(pool: &PgPool, id: i64, user: &str) -> Result<Access> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT n.owner, a.access FROM notebooks n \
         LEFT JOIN notebook_access a ON a.notebook_id = n.id AND a.user_name = $2 WHERE n.id = $1",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Err(Error::NotFound(format!("no notebook {id}"))),
        Some((owner, _)) if owner == user => Ok(Access::Owner),
        Some((_, a)) => Ok(a.as_deref().map_or(Access::None, Access::parse)),
    }
}

/// Fails with PermissionDenied unless `user` may at least `need` notebook `id`.
pub async fn require(pool: &PgPool, id: i64, user: &str, need: Access) -> Result<Access> {
    let has = access(pool, id, user).await?;
    if has < need || has == Access::None {
        return Err(Error::PermissionDenied(format!(
            "notebook {id} is not shared with {user}{}",
            if has == Access::Read {
                " for writing"
            } else {
                ""
            }
        )));
    }
    Ok(has)
}

async fn grants(pool: &PgPool, id: i64) -> Result<Vec<(String, Access)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT user_name, access FROM notebook_access WHERE notebook_id = $1 ORDER BY user_name",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(u, a)| (u, Access::parse(&a)))
        .collect())
}

fn info_from(row: &sqlx::postgres::PgRow, user: &str) -> Result<Info> {
    let owner: String = row.try_get("owner")?;
    let access: Option<String> = row.try_get("access")?;
    Ok(Info {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        access: if owner == user {
            Access::Owner
        } else {
            access.as_deref().map_or(Access::None, Access::parse)
        },
        owner,
        updated_ms: row.try_get("updated_ms")?,
        grants: Vec::new(),
    })
}

const INFO: &str = "SELECT n.id, n.title, n.owner, a.access, \
     (extract(epoch FROM n.updated_at) * 1000)::bigint AS updated_ms FROM notebooks n \
     LEFT JOIN notebook_access a ON a.notebook_id = n.id AND a.user_name = $1";

/// Notebook `id` as `user` sees it (grants only for the owner).
pub async fn info(pool: &PgPool, id: i64, user: &str) -> Result<Info> {
    let row = sqlx::query(&format!("{INFO} WHERE n.id = $2"))
        .bind(user)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no notebook {id}")))?;
    let mut info = info_from(&row, user)?;
    if info.access == Access::Owner {
        info.grants = grants(pool, id).await?;
    }
    Ok(info)
}

/// The notebooks `user` may open, most recently changed first.
pub async fn list(pool: &PgPool, user: &str) -> Result<Vec<Info>> {
    let rows = sqlx::query(&format!(
        "{INFO} WHERE n.owner = $1 OR a.access IS NOT NULL ORDER BY n.updated_at DESC, n.id DESC"
    ))
    .bind(user)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| info_from(r, user)).collect()
}

/// The owner gives `user` `access` (None takes it away).
pub async fn share(
    pool: &PgPool,
    id: i64,
    caller: &str,
    user: &str,
    grant: Access,
) -> Result<Info> {
    if access(pool, id, caller).await? != Access::Owner {
        return Err(Error::PermissionDenied(format!(
            "only the owner of notebook {id} shares it"
        )));
    }
    let user = user.trim();
    if user == caller {
        return Err(Error::InvalidArgument("the owner always has access".into()));
    }
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)")
        .bind(user)
        .fetch_one(pool)
        .await?;
    if !known {
        return Err(Error::NotFound(format!("no user `{user}`")));
    }
    match grant {
        Access::Read | Access::Write => {
            sqlx::query(
                "INSERT INTO notebook_access (notebook_id, user_name, access) VALUES ($1, $2, $3) \
                 ON CONFLICT (notebook_id, user_name) DO UPDATE SET access = excluded.access",
            )
            .bind(id)
            .bind(user)
            .bind(if grant == Access::Read {
                "read"
            } else {
                "write"
            })
            .execute(pool)
            .await?;
        }
        Access::None => {
            sqlx::query("DELETE FROM notebook_access WHERE notebook_id = $1 AND user_name = $2")
                .bind(id)
                .bind(user)
                .execute(pool)
                .await?;
        }
        Access::Owner => {
            return Err(Error::InvalidArgument(
                "a notebook has one owner; share read or write".into(),
            ));
        }
    }
    info(pool, id, caller).await
}

/// The notebook: its snapshot with the changes stored since applied; and how many those are.
pub async fn load(pool: &PgPool, id: i64, author: &str) -> Result<(Notebook, usize)> {
    let snapshot: Vec<u8> = sqlx::query_scalar("SELECT snapshot FROM notebooks WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no notebook {id}")))?;
    let changes: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT change FROM notebook_changes WHERE notebook_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut nb = Notebook::load(&snapshot, author)
        .map_err(|e| Error::Internal(format!("notebook {id}'s snapshot: {e}")))?;
    nb.apply_changes(&changes)
        .map_err(|e| Error::Internal(format!("notebook {id}'s changes: {e}")))?;
    Ok((nb, changes.len()))
}

/// Stores `changes` (hash, bytes) sent by `author`'s session (each once), with the notebook's
/// title now, and tells every
/// instance: `alyx_notebooks` "id instance first_seq last_seq".
pub async fn append(
    pool: &PgPool,
    id: i64,
    instance: &str,
    author: &str,
    title: &str,
    changes: &[(String, Vec<u8>)],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let hashes: Vec<&str> = changes.iter().map(|(h, _)| h.as_str()).collect();
    let bytes: Vec<&[u8]> = changes.iter().map(|(_, b)| b.as_slice()).collect();
    let mut tx = pool.begin().await?;
    let seqs: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO notebook_changes (notebook_id, hash, change, author) \
         SELECT $1, h, c, $4 FROM unnest($2::text[], $3::bytea[]) AS x (h, c) \
         ON CONFLICT (notebook_id, hash) DO NOTHING RETURNING seq",
    )
    .bind(id)
    .bind(&hashes)
    .bind(&bytes)
    .bind(author)
    .fetch_all(&mut *tx)
    .await?;
    attest(&mut tx, id, author, &hashes).await?;
    if let (Some(lo), Some(hi)) = (seqs.iter().min(), seqs.iter().max()) {
        sqlx::query("UPDATE notebooks SET updated_at = now(), title = $2 WHERE id = $1")
            .bind(id)
            .bind(title)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify('alyx_notebooks', $1)")
            .bind(format!("{id} {instance} {lo} {hi}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The changes of notebook `id` stored with sequence numbers `lo..=hi`.
pub async fn changes_between(pool: &PgPool, id: i64, lo: i64, hi: i64) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "SELECT change FROM notebook_changes WHERE notebook_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
    )
    .bind(id)
    .bind(lo)
    .bind(hi)
    .fetch_all(pool)
    .await?)
}

/// The hashes of every change `nb` holds.
fn all_hashes(nb: &mut Notebook) -> Result<Vec<String>> {
    Ok(nb
        .changes_since(&[])
        .map_err(|e| Error::Internal(e.to_string()))?
        .into_iter()
        .map(|(h, _)| h)
        .collect())
}

/// Replaces the snapshot with `nb` saved and deletes the stored changes it holds.
pub async fn compact(pool: &PgPool, id: i64, nb: &mut Notebook) -> Result<u64> {
    let snapshot = nb.save();
    let held = all_hashes(nb)?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE notebooks SET snapshot = $2, title = $3 WHERE id = $1")
        .bind(id)
        .bind(snapshot)
        .bind(nb.title())
        .execute(&mut *tx)
        .await?;
    let deleted =
        sqlx::query("DELETE FROM notebook_changes WHERE notebook_id = $1 AND hash = ANY($2)")
            .bind(id)
            .bind(&held)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

/// Tells every instance about presence in notebook `id`: `alyx_presence` "id instance hex".
pub async fn publish_presence(
    pool: &PgPool,
    id: i64,
    instance: &str,
    encoded: &[u8],
) -> Result<()> {
    let hex: String = encoded.iter().map(|b| format!("{b:02x}")).collect();
    sqlx::query("SELECT pg_notify('alyx_presence', $1)")
        .bind(format!("{id} {instance} {hex}"))
        .execute(pool)
        .await?;
    Ok(())
}
