//! Who may call what: users with a role, bearer tokens stored as SHA-256 hashes, and the check
//! every RPC (except health and reflection) makes before it does anything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::{Error, Result};

/// A user's role. Physicists and shift crews read; operators also administer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Role {
    Physicist,
    Shift,
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Physicist, Role::Shift, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Physicist => "physicist",
            Role::Shift => "shift",
            Role::Operator => "operator",
        }
    }

    /// The highest job priority the role may ask for: physicists share the cluster at
    /// priority 10 and below, shift crews may put the control room's jobs ahead of them, and
    /// operators use the whole range.
    pub fn max_priority(self) -> i32 {
        match self {
            Role::Physicist => 10,
            Role::Shift => 50,
            Role::Operator => 100,
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown role `{s}`: use physicist, shift or operator"
                ))
            })
    }
}

/// The caller of an RPC, once its token checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Fails with PermissionDenied unless the caller is an operator.
    pub fn require_operator(&self) -> Result<()> {
        if self.role == Role::Operator {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "user `{}` has role {}; this call needs role operator",
                self.name,
                self.role.as_str()
            )))
        }
    }
}

/// A new random token: `alyx_` and 64 hex digits (256 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("alyx_{}", hex(&bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts the token from an `authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let Some(value) = header else {
        return Err(Error::Unauthenticated(
            "no `authorization: Bearer <token>` metadata; get a token with `alyxctl admin create-user`".into(),
        ));
    };
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Unauthenticated("the authorization metadata is not `Bearer <token>`".into())
        })
}

/// How long a checked token is trusted without asking PostgreSQL again; a revoked token stops
/// working within this time on every instance. A token found bad is refused for as long
/// without asking again (a client retrying with a wrong token costs one query per period).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// Tokens remembered at most; beyond that the expired answers go, then all.
const CACHE_ENTRIES: usize = 100_000;

/// Token lookups running on PostgreSQL at once: a flood of made-up tokens waits here instead
/// of taking every connection of the pool that ingest, jobs and collab share.
const LOOKUPS: usize = 4;

/// Checks tokens against the `tokens` table, caching answers (good and bad) for a few seconds.
pub struct Authenticator {
    pool: PgPool,
    cache: Mutex<HashMap<String, (Option<Caller>, Instant)>>,
    lookups: tokio::sync::Semaphore,
}

impl Authenticator {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cache: Mutex::new(HashMap::new()),
            lookups: tokio::sync::Semaphore::new(LOOKUPS),
        }
    }

    /// The caller owning `header`'s token, or Unauthenticated.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller> {
        let hash = token_hash(bearer(header)?);
        if let Some(known) = self.cached(&hash) {
            return known;
        }
        let _turn = self
            .lookups
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("alyxd is shutting down".into()))?;
        // Another caller with the same token may have looked it up while this one waited.
        if let Some(known) = self.cached(&hash) {
            return known;
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT u.name, u.role FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > now())",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let caller = match row {
            Some((name, role)) => Some(Caller {
                name,
                role: Role::parse(&role)?,
            }),
            None => None,
        };
        self.remember(hash, caller.clone());
        caller.ok_or_else(refused)
    }

    /// The cached answer for `hash`, if fresh.
    fn cached(&self, hash: &str) -> Option<Result<Caller>> {
        let cache = self.lock();
        let (caller, at) = cache.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| caller.clone().ok_or_else(refused))
    }

    fn remember(&self, hash: String, caller: Option<Caller>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(hash, (caller, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<Caller>, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn refused() -> Error {
    Error::Unauthenticated("unknown, revoked or expired token".into())
}

/// A user as listed by admins.
#[derive(Clone, Debug, PartialEq)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_ns: i64,
    pub revoked: bool,
}

/// Creates a user (or a new token for an existing one of the same role) and returns the token,
/// which is stored only hashed.
pub async fn create_user(pool: &PgPool, name: &str, role: Role) -> Result<String> {
    create_user_expiring(pool, name, role, None).await
}

/// [`create_user`] with a token that stops working after `lifetime` (None: never).
pub async fn create_user_expiring(
    pool: &PgPool,
    name: &str,
    role: Role,
    lifetime: Option<Duration>,
) -> Result<String> {
    let seconds = match lifetime {
        None => None,
        Some(d) if d.as_secs() > 0 && d.as_secs() <= 10 * 365 * 86_400 => Some(d.as_secs() as i64),
        Some(_) => {
            return Err(Error::InvalidArgument(
                "a token lifetime is from 1 s to 10 years".into(),
            ));
        }
    };
    if name.is_empty()
        || name.len() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::InvalidArgument(format!(
            "invalid user name `{name}`: 1 to 64 characters, no spaces"
        )));
    }
    let mut tx = pool.begin().await?;
    let existing: Option<(i32, String)> =
        sqlx::query_as("SELECT id, role FROM users WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let id = match existing {
        Some((id, r)) if r == role.as_str() => id,
        Some((_, r)) => {
            return Err(Error::AlreadyExists(format!(
                "user `{name}` exists with role {r}; revoke it or pick another name"
            )));
        }
        None => {
            sqlx::query_scalar("INSERT INTO users (name, role) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(role.as_str())
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let token = new_token();
    sqlx::query(
        "INSERT INTO tokens (user_id, token_sha256, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(id)
    .bind(token_hash(&token))
    .bind(seconds.map(|s| s as f64))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

pub async fn list_users(pool: &PgPool) -> Result<Vec<UserInfo>> {
    let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "SELECT u.name, u.role,
                (extract(epoch FROM u.created_at) * 1e9)::bigint,
                NOT EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL)
         FROM users u ORDER BY u.name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(name, role, created_ns, revoked)| {
            Ok(UserInfo {
                name,
                role: Role::parse(&role)?,
                created_ns,
                revoked,
            })
        })
        .collect()
}

/// Revokes every live token of `name`; returns how many.
pub async fn revoke_user(pool: &PgPool, name: &str) -> Result<u64> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    let Some(id) = exists else {
        return Err(Error::NotFound(format!("no user named `{name}`")));
    };
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_fixed_length() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(Some("Bearer abc")).ok(), Some("abc"));
        assert!(matches!(bearer(None), Err(Error::Unauthenticated(_))));
        assert!(matches!(
            bearer(Some("Basic abc")),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            bearer(Some("Bearer ")),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn only_operators_administer() {
        for role in Role::ALL {
            let caller = Caller {
                name: "x".into(),
                role,
            };
            assert_eq!(caller.require_operator().is_ok(), role == Role::Operator);
            assert_eq!(Role::parse(role.as_str()).ok(), Some(role));
        }
        assert!(Role::parse("admin").is_err());
    }
}
