//! warden embedded in another program: a `Server` bound in-process to a source of its
//! own — here a fixed bundle in memory — answering over gRPC like `warden serve`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use warden::grpc::pb;
use warden::grpc::pb::authorizer_client::AuthorizerClient;
use warden::server::{Config, Listen, Server};
use warden::service::{Limits, ServiceConfig};
use warden::source::MemorySource;

fn config() -> Config {
    Config {
        // Unused: the source is given.
        bundle: "unused".into(),
        grpc: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin: None,
        watch: false,
        debounce: Duration::from_millis(200),
        max_debounce: Duration::from_secs(2),
        service: ServiceConfig {
            cache_size: 1000,
            limits: Limits::default(),
        },
        request_timeout: Duration::from_secs(30),
        max_message_bytes: 1 << 20,
        drain_timeout: Duration::from_secs(5),
        decision_log: None,
        decision_log_queue: 1024,
        shadow: None,
        connections: warden::server::conn::Config {
            max_grpc: 16,
            max_admin: 4,
            idle_timeout: None,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(10),
            header_read_timeout: None,
        },
        credentials: None,
        fleet: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_serves_a_bundle_held_in_memory() {
    let files =
        warden::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"))
            .unwrap();
    let (digest, count) = (warden::digest::of_files(&files), files.len());
    let server = Server::bind_source(config(), Box::new(MemorySource::new(files)))
        .await
        .unwrap();
    let status = server.published().status();
    assert_eq!(status.source, format!("memory ({count} files)"));
    assert_eq!(
        (status.revision, status.digest.as_deref()),
        (Some(1), Some(&*digest))
    );
    let addr = server.grpc_addr().to_owned();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(stop.clone().cancelled_owned()));

    let channel = warden::grpc::client::connect(&addr, Duration::from_secs(5))
        .await
        .unwrap();
    let r = AuthorizerClient::new(channel)
        .authorize(pb::AuthorizeRequest {
            principal: "arn:aws:iam::333333333333:user/engineering/alice".into(),
            action: "orders:GetOrder".into(),
            resource: "arn:aws:orders:us-east-1:333333333333:order/42".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        r.metadata()
            .get("warden-bundle-digest")
            .unwrap()
            .to_str()
            .unwrap(),
        digest
    );
    let r = r.into_inner();
    assert_eq!((r.decision(), r.revision), (pb::Decision::Allow, 1));

    stop.cancel();
    running.await.unwrap().unwrap();
}
