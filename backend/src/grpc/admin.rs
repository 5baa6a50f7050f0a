//! `alyx.v1.AdminService`: ingest and storage status, users. Operators only.

use std::sync::Arc;

use alyx_proto::v1;
use alyx_proto::v1::admin_service_server::{AdminService, SERVICE_NAME};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::{Context, status};
use crate::auth::{self, Role};
use crate::catalogue;
use crate::error::Error;
use crate::ingest::{Ingest, IngestState, IngestStatus};

pub struct AdminApi {
    pub ctx: Context,
    pub pool: PgPool,
    pub ingest: Option<Arc<Ingest>>,
    pub data_dir: String,
    pub scheduler: Arc<crate::jobs::scheduler::Scheduler>,
}

fn role_to(r: Role) -> v1::Role {
    match r {
        Role::Physicist => v1::Role::Physicist,
        Role::Shift => v1::Role::Shift,
        Role::Operator => v1::Role::Operator,
    }
}

fn role_from(r: i32) -> Result<Role, Status> {
    match v1::Role::try_from(r) {
        Ok(v1::Role::Physicist) => Ok(Role::Physicist),
        Ok(v1::Role::Shift) => Ok(Role::Shift),
        Ok(v1::Role::Operator) => Ok(Role::Operator),
        _ => Err(status(Error::InvalidArgument(
            "role is required: physicist, shift or operator".into(),
        ))),
    }
}

fn ingest_to(s: IngestStatus) -> v1::IngestStatus {
    v1::IngestStatus {
        state: s.state.as_str().into(),
        detail: s.detail,
        brokers: s.brokers,
        topic: s.topic,
        instance: s.instance,
        events_per_second: s.events_per_second,
        partitions: s
            .partitions
            .into_iter()
            .map(|p| v1::PartitionStatus {
                partition: p.partition,
                owner: p.owner,
                committed_offset: p.committed_offset,
                high_watermark: p.high_watermark,
                lag: p.lag,
            })
            .collect(),
        queue_depth: s.queue_depth,
        dead_letters: s.dead_letters,
        estimated_delay_s: s.estimated_delay_s,
        events_stored: s.events_stored,
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn get_ingest_status(
        &self,
        request: Request<v1::GetIngestStatusRequest>,
    ) -> Result<Response<v1::IngestStatus>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetIngestStatus", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let s = match &self.ingest {
                    Some(ingest) => ingest_to(ingest.status().await.map_err(status)?),
                    None => v1::IngestStatus {
                        state: IngestState::Disabled.as_str().into(),
                        ..Default::default()
                    },
                };
                Ok(Response::new(s))
            })
            .await
    }

    async fn get_executor_status(
        &self,
        request: Request<v1::GetExecutorStatusRequest>,
    ) -> Result<Response<v1::ExecutorStatusList>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetExecutorStatus", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let executors = self
                    .scheduler
                    .executor_status()
                    .into_iter()
                    .map(|(name, health, slots, running)| v1::ExecutorStatus {
                        name: name.into(),
                        up: health.up,
                        detail: health.detail,
                        slots: slots as u32,
                        running: running as u32,
                    })
                    .collect();
                Ok(Response::new(v1::ExecutorStatusList { executors }))
            })
            .await
    }

    async fn get_storage_status(
        &self,
        request: Request<v1::GetStorageStatusRequest>,
    ) -> Result<Response<v1::StorageStatus>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "GetStorageStatus", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let s = catalogue::storage_status(&self.pool)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::StorageStatus {
                    datasets: s
                        .datasets
                        .into_iter()
                        .map(|d| v1::DatasetStorage {
                            name: d.name,
                            chunks: d.chunks,
                            bytes: d.bytes,
                            catalogue_rows: d.catalogue_rows,
                        })
                        .collect(),
                    catalogue_rows: s.catalogue_rows,
                    catalogue_partitions: s.catalogue_partitions,
                    data_dir: self.data_dir.clone(),
                }))
            })
            .await
    }

    async fn create_user(
        &self,
        request: Request<v1::CreateUserRequest>,
    ) -> Result<Response<v1::CreateUserResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "CreateUser", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let r = request.into_inner();
                let lifetime = (r.expires_seconds > 0)
                    .then(|| std::time::Duration::from_secs(r.expires_seconds));
                let token =
                    auth::create_user_expiring(&self.pool, &r.name, role_from(r.role)?, lifetime)
                        .await
                        .map_err(status)?;
                Ok(Response::new(v1::CreateUserResponse { token }))
            })
            .await
    }

    async fn list_users(
        &self,
        request: Request<v1::ListUsersRequest>,
    ) -> Result<Response<v1::ListUsersResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "ListUsers", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let users = auth::list_users(&self.pool).await.map_err(status)?;
                Ok(Response::new(v1::ListUsersResponse {
                    users: users
                        .into_iter()
                        .map(|u| v1::User {
                            name: u.name,
                            role: role_to(u.role).into(),
                            created_ns: u.created_ns,
                            revoked: u.revoked,
                        })
                        .collect(),
                }))
            })
            .await
    }

    async fn revoke_user(
        &self,
        request: Request<v1::RevokeUserRequest>,
    ) -> Result<Response<v1::RevokeUserResponse>, Status> {
        self.ctx
            .observe(SERVICE_NAME, "RevokeUser", async {
                self.ctx
                    .caller(&request)
                    .await?
                    .require_operator()
                    .map_err(status)?;
                let n = auth::revoke_user(&self.pool, &request.get_ref().name)
                    .await
                    .map_err(status)?;
                Ok(Response::new(v1::RevokeUserResponse {
                    tokens_revoked: n as u32,
                }))
            })
            .await
    }
}
