//! A Spark Connect client (gRPC, generated from Spark's own protocol descriptors): the Spark
//! query engine, and later the Spark executor, speak to a cluster through it.
//!
//! A query runs in its own Spark session: the dataset's tables become temporary views over the
//! Parquet chunks its manifest lists (never a glob, so a chunk not yet published is never
//! read), the SQL runs, and the result comes back as Arrow batches that polars reads.

use std::io::Cursor;
use std::time::Duration;

use alyx_proto::spark;
use alyx_proto::spark::spark_connect_service_client::SparkConnectServiceClient;
use polars::prelude::*;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use alyx_query::{Checked, Engine};

/// A session on a Spark Connect server.
#[derive(Clone)]
pub struct SparkSession {
    client: SparkConnectServiceClient<Channel>,
    session_id: String,
    user: String,
    url: String,
}

fn unavailable(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("spark connect at {url}: {e}"))
}

/// Spark Connect's `sc://host:port` (or an http URL) as the URL tonic dials.
fn http_url(url: &str) -> String {
    match url.strip_prefix("sc://") {
        Some(rest) => format!("http://{}", rest.split('/').next().unwrap_or(rest)),
        None => url.to_owned(),
    }
}

/// A random (version 4) UUID: Spark wants one as the session id.
fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl SparkSession {
    /// Opens a session on the server at `url` (`sc://127.0.0.1:15002`).
    pub async fn connect(url: &str, user: &str) -> Result<Self> {
        let endpoint = Endpoint::from_shared(http_url(url))
            .map_err(|e| Error::InvalidArgument(format!("spark url `{url}`: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| unavailable(url, e))?;
        let client = SparkConnectServiceClient::new(channel).max_decoding_message_size(256 << 20);
        Ok(Self {
            client,
            session_id: uuid(),
            user: user.to_owned(),
            url: url.to_owned(),
        })
    }

    fn user_context(&self) -> Option<spark::UserContext> {
        Some(spark::UserContext {
            user_id: self.user.clone(),
            user_name: self.user.clone(),
            ..Default::default()
        })
    }

    async fn execute(&mut self, plan: spark::Plan, tag: Option<&str>) -> Result<Vec<Vec<u8>>> {
        let request = spark::ExecutePlanRequest {
            session_id: self.session_id.clone(),
            user_context: self.user_context(),
            plan: Some(plan),
            client_type: Some("alyx".into()),
            tags: tag.map(|t| vec![t.to_owned()]).unwrap_or_default(),
            ..Default::default()
        };
        let mut stream = self
            .client
            .execute_plan(request)
            .await
            .map_err(|s| self.status(s))?
            .into_inner();
        let mut batches = Vec::new();
        while let Some(msg) = stream.message().await.map_err(|s| self.status(s))? {
            use spark::execute_plan_response::ResponseType;
            match msg.response_type {
                Some(ResponseType::ArrowBatch(b)) => batches.push(b.data),
                Some(ResponseType::ResultComplete(_)) => break,
                _ => {}
            }
        }
        Ok(batches)
    }

    fn status(&self, s: tonic::Status) -> Error {
        match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
                if s.message().contains("transport") || s.message().contains("connect") =>
            {
                unavailable(&self.url, s.message())
            }
            tonic::Code::Unavailable => unavailable(&self.url, s.message()),
            tonic::Code::Cancelled => {
                Error::Unavailable(format!("spark: the query was cancelled: {}", s.message()))
            }
            _ => Error::InvalidArgument(format!("spark: {}", first_line(s.message()))),
        }
    }

    /// Makes `paths` (Parquet files) readable as the temporary view `name`.
    pub async fn create_view(&mut self, name: &str, paths: Vec<String>) -> Result<()> {
        use spark::read::{DataSource, ReadType};
        let read = spark::Relation {
            rel_type: Some(spark::relation::RelType::Read(spark::Read {
                read_type: Some(ReadType::DataSource(DataSource {
                    format: Some("parquet".into()),
                    paths,
                    ..Default::default()
                })),
                is_streaming: false,
            })),
            ..Default::default()
        };
        let command = spark::Command {
            command_type: Some(spark::command::CommandType::CreateDataframeView(
                spark::CreateDataFrameViewCommand {
                    input: Some(read),
                    name: name.to_owned(),
                    is_global: false,
                    replace: true,
                },
            )),
        };
        self.execute(
            spark::Plan {
                op_type: Some(spark::plan::OpType::Command(command)),
            },
            None,
        )
        .await?;
        Ok(())
    }

    /// Runs a query checked for Spark and collects its result; `tag` lets
    /// [`SparkSession::interrupt`] cancel it.
    pub async fn sql(&mut self, checked: &Checked, tag: Option<&str>) -> Result<DataFrame> {
        if checked.engine() != Engine::Spark {
            return Err(Error::Internal(format!(
                "a query checked for the {} engine was sent to Spark",
                checked.engine().name()
            )));
        }
        let relation = spark::Relation {
            rel_type: Some(spark::relation::RelType::Sql(spark::Sql {
                query: checked.engine_sql(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let batches = self
            .execute(
                spark::Plan {
                    op_type: Some(spark::plan::OpType::Root(relation)),
                },
                tag,
            )
            .await?;
        let mut out: Option<DataFrame> = None;
        for data in batches {
            let df = IpcStreamReader::new(Cursor::new(data))
                .finish()
                .map_err(|e| {
                    Error::Internal(format!("spark returned unreadable Arrow data: {e}"))
                })?;
            match &mut out {
                None => out = Some(df),
                Some(all) => {
                    all.vstack_mut(&df)
                        .map_err(|e| Error::Internal(format!("spark batches disagree: {e}")))?;
                }
            }
        }
        Ok(out.unwrap_or_default())
    }

    /// Cancels every operation of this session tagged `tag`.
    pub async fn interrupt(&mut self, tag: &str) -> Result<()> {
        let request = spark::InterruptRequest {
            session_id: self.session_id.clone(),
            user_context: self.user_context(),
            client_type: Some("alyx".into()),
            interrupt_type: spark::interrupt_request::InterruptType::Tag as i32,
            interrupt: Some(spark::interrupt_request::Interrupt::OperationTag(
                tag.to_owned(),
            )),
            ..Default::default()
        };
        self.client
            .interrupt(request)
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    /// A guard that releases this session when dropped: a caller that goes away mid-query
    /// (its future dropped) ends what it started on the cluster, as releasing a session
    /// interrupts its operations.
    pub fn release_on_drop(&self) -> ReleaseOnDrop {
        ReleaseOnDrop(Some(self.clone()))
    }

    /// Ends the session on the server (its views go with it).
    pub async fn release(mut self) {
        let request = spark::ReleaseSessionRequest {
            session_id: self.session_id.clone(),
            user_context: self.user_context(),
            client_type: Some("alyx".into()),
            ..Default::default()
        };
        let _ = self.client.release_session(request).await;
    }
}

/// See [`SparkSession::release_on_drop`].
pub struct ReleaseOnDrop(Option<SparkSession>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let (Some(session), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(session.release());
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_version_4_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(uuid(), id);
    }

    #[test]
    fn spark_urls_become_http() {
        assert_eq!(http_url("sc://127.0.0.1:15002"), "http://127.0.0.1:15002");
        assert_eq!(http_url("sc://h:1/;user_id=x"), "http://h:1");
        assert_eq!(http_url("http://h:2"), "http://h:2");
    }
}
