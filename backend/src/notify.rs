//! PostgreSQL notifications that survive a lost connection: the one LISTEN loop the live
//! stream, the job followers and the notebook followers share.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification};

/// What [`Notifications::next`] hands out.
pub enum Notice {
    /// Listening (again): a notification may have been missed while not listening, so
    /// whatever the notifications keep fresh must be refreshed.
    Listening,
    Message(PgNotification),
}

/// The notifications of `channels`, reconnecting (after a second) whenever PostgreSQL goes.
pub struct Notifications {
    pool: PgPool,
    channels: &'static [&'static str],
    /// What the notifications are for, in log lines ("the live stream", "job changes").
    what: &'static str,
    listener: Option<PgListener>,
}

impl Notifications {
    pub fn new(pool: PgPool, channels: &'static [&'static str], what: &'static str) -> Self {
        Self {
            pool,
            channels,
            what,
            listener: None,
        }
    }

    /// The next notice; never fails, it retries instead. Dropping the future (at shutdown) is
    /// safe at any point.
    pub async fn next(&mut self) -> Notice {
        loop {
            match &mut self.listener {
                None => match self.listen().await {
                    Ok(l) => {
                        self.listener = Some(l);
                        return Notice::Listening;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for {}; retrying", self.what);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(l) => match l.recv().await {
                    Ok(n) => return Notice::Message(n),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost PostgreSQL while listening for {}; reconnecting", self.what);
                        self.listener = None;
                    }
                },
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut l = PgListener::connect_with(&self.pool).await?;
        l.listen_all(self.channels.iter().copied()).await?;
        Ok(l)
    }
}
