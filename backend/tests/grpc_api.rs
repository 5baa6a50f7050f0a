//! The gRPC surface without ingest: authentication on every call, roles, users, health and
//! reflection, against the real PostgreSQL. This is the wire contract any gRPC client sees
//! (status codes, requests the typed client cannot even express), so it speaks the generated
//! stubs and tonic directly, as `grpcurl` or a Python client would.

mod support;

use alyx_backend::auth::Role;
use alyx_proto::v1;
use alyx_proto::v1::admin_service_client::AdminServiceClient;
use alyx_proto::v1::event_service_client::EventServiceClient;
use sqlx::PgPool;
use support::{Server, authorized, config, token};
use tonic::Code;
use tonic::transport::Channel;

async fn events(server: &Server) -> EventServiceClient<Channel> {
    EventServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect")
}

async fn admin(server: &Server) -> AdminServiceClient<Channel> {
    AdminServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect")
}

#[sqlx::test(migrations = false)]
async fn calls_without_a_valid_token_are_unauthenticated(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let mut events = events(&server).await;

    let missing = events
        .list_datasets(v1::ListDatasetsRequest {})
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("Bearer"),
        "{}",
        missing.message()
    );

    let wrong = events
        .list_datasets(authorized("alyx_not-a-token", v1::ListDatasetsRequest {}))
        .await
        .expect_err("wrong token");
    assert_eq!(wrong.code(), Code::Unauthenticated);

    let physicist = token(&pool, "ada", Role::Physicist).await;
    let datasets = events
        .list_datasets(authorized(&physicist, v1::ListDatasetsRequest {}))
        .await
        .expect("a physicist lists datasets")
        .into_inner();
    assert!(datasets.datasets.is_empty());

    let missing_dataset = events
        .list_events(authorized(
            &physicist,
            v1::ListEventsRequest {
                dataset: "nope".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("unknown dataset");
    assert_eq!(missing_dataset.code(), Code::NotFound);
    assert!(missing_dataset.message().contains("nope"));
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn only_operators_administer_and_revoked_tokens_stop_working(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let mut admin = admin(&server).await;
    let shift = token(&pool, "crew", Role::Shift).await;
    let operator = token(&pool, "ops", Role::Operator).await;

    let denied = admin
        .list_users(authorized(&shift, v1::ListUsersRequest {}))
        .await
        .expect_err("shift is not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("operator"),
        "{}",
        denied.message()
    );

    let created = admin
        .create_user(authorized(
            &operator,
            v1::CreateUserRequest {
                name: "grace".into(),
                role: v1::Role::Physicist.into(),
            },
        ))
        .await
        .expect("operator creates a user")
        .into_inner();
    assert!(created.token.starts_with("alyx_"));
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM tokens")
        .fetch_all(&pool)
        .await
        .expect("tokens");
    assert!(!stored.contains(&created.token), "tokens are stored hashed");

    let bad_role = admin
        .create_user(authorized(
            &operator,
            v1::CreateUserRequest {
                name: "x".into(),
                role: 0,
            },
        ))
        .await
        .expect_err("no role");
    assert_eq!(bad_role.code(), Code::InvalidArgument);

    let users = admin
        .list_users(authorized(&operator, v1::ListUsersRequest {}))
        .await
        .expect("list")
        .into_inner()
        .users;
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["crew", "grace", "ops"]);

    let revoked = admin
        .revoke_user(authorized(
            &operator,
            v1::RevokeUserRequest {
                name: "grace".into(),
            },
        ))
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(revoked.tokens_revoked, 1);
    let mut events = events(&server).await;
    let after = events
        .list_datasets(authorized(&created.token, v1::ListDatasetsRequest {}))
        .await
        .expect_err("revoked");
    assert_eq!(after.code(), Code::Unauthenticated);

    let status = admin
        .get_ingest_status(authorized(&operator, v1::GetIngestStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.state, "disabled");
    let storage = admin
        .get_storage_status(authorized(&operator, v1::GetStorageStatusRequest {}))
        .await
        .expect("storage")
        .into_inner();
    assert!(
        storage.catalogue_partitions >= 9,
        "default + a day back + a week ahead: {}",
        storage.catalogue_partitions
    );
    server.stop().await;
}

#[sqlx::test(migrations = false)]
async fn health_and_reflection_need_no_token(pool: PgPool) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(config(&pool, dir.path(), None, "unused")).await;
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let events = health
        .check(HealthCheckRequest {
            service: "alyx.v1.EventService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(events.status(), ServingStatus::Serving);

    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "alyx.v1.EventService",
        "alyx.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }
    server.stop().await;
}
