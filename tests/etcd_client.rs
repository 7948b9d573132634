//! warden's etcd client (`src/etcd.rs`) against a real etcd: a prefix read at one revision,
//! paged; hostile keys refused by name; a compacted revision said as such.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/etcd.rs"]
mod etcd;

use etcd::write;
use warden::etcd::pb::etcdserverpb as rpc;
use warden::etcd::{Etcd, EtcdError, PAGE_KEYS, put_op};

fn put(key: &str, value: &str) -> rpc::RequestOp {
    put_op(key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

#[tokio::test]
async fn reads_a_prefix_at_one_revision_page_by_page() {
    let server = etcd::Etcd::start();
    let client = Etcd::new(std::slice::from_ref(&server.endpoint)).unwrap();
    // More keys than a page, written in chunks (etcd's default limit is 128 ops per txn).
    let n = PAGE_KEYS as usize * 2 + 17;
    let keys: Vec<String> = (0..n).map(|i| format!("/w/b/f/{i:05}.json")).collect();
    for chunk in keys.chunks(100) {
        write(&client, chunk.iter().map(|k| put(k, "{}")).collect()).await;
    }
    let outside = write(&client, vec![put("/w/c/x.json", "{}"), put("/w/b", "{}")]).await;
    let first = client.read_prefix("/w/b/", None).await.unwrap();
    assert_eq!(first.files.len(), n);
    assert_eq!(first.revision, outside);
    assert!(first.files.keys().all(|k| k.starts_with("f/")));

    // A read at the earlier revision does not see later writes.
    let later = write(&client, vec![put("/w/b/f/new.json", "[]")]).await;
    let again = client
        .read_prefix("/w/b/", Some(first.revision))
        .await
        .unwrap();
    assert_eq!(again.files, first.files);
    let now = client.read_prefix("/w/b/", None).await.unwrap();
    assert_eq!(now.revision, later);
    assert_eq!(now.max_mod_revision, later);
    assert_eq!(now.files["f/new.json"], "[]");
    assert_eq!(client.revision().await.unwrap(), later);

    // Compacted history is said as such.
    client.compact(later).await.unwrap();
    let e = client
        .read_prefix("/w/b/", Some(first.revision))
        .await
        .unwrap_err();
    assert!(matches!(e, EtcdError::Compacted { .. }), "{e}");
}

#[tokio::test]
async fn hostile_keys_and_values_are_refused_by_name() {
    let server = etcd::Etcd::start();
    let client = Etcd::new(std::slice::from_ref(&server.endpoint)).unwrap();
    for (key, value) in [
        ("/w/b/../../etc/passwd", "x"),
        ("/w/b/a//b.json", "x"),
        ("/w/b/", "x"),
    ] {
        let rev = write(&client, vec![put(key, value)]).await;
        let e = client.read_prefix("/w/b/", Some(rev)).await.unwrap_err();
        assert!(
            matches!(&e, EtcdError::Content { key: k, .. } if k == key),
            "{key}: {e}"
        );
        server.ctl(&["del", key]);
    }
    let rev = write(
        &client,
        vec![put_op(b"/w/b/bin.json".to_vec(), vec![0xff, 0xfe])],
    )
    .await;
    let e = client.read_prefix("/w/b/", Some(rev)).await.unwrap_err();
    assert!(
        e.to_string().contains("bin.json") && e.to_string().contains("UTF-8"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_error_not_a_hang() {
    let mut server = etcd::Etcd::start();
    let client = Etcd::new(std::slice::from_ref(&server.endpoint)).unwrap();
    client.revision().await.unwrap();
    server.stop();
    let e = tokio::time::timeout(std::time::Duration::from_secs(30), client.revision())
        .await
        .expect("a call to a stopped etcd returns")
        .unwrap_err();
    assert!(matches!(e, EtcdError::Call(_)), "{e}");
    server.resume();
    // The same client reaches it again.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while client.revision().await.is_err() {
        assert!(std::time::Instant::now() < give_up, "never reconnected");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_page_of_large_values_is_read_in_smaller_pages() {
    let server = etcd::Etcd::start();
    let client = Etcd::new(std::slice::from_ref(&server.endpoint)).unwrap();
    // 70 values of a million bytes each: a page of them all passes the 64 MiB message limit.
    let value = "x".repeat(1_000_000);
    for i in 0..70 {
        write(&client, vec![put(&format!("/w/big/{i:03}.json"), &value)]).await;
    }
    let read = client.read_prefix("/w/big/", None).await.unwrap();
    assert_eq!(read.files.len(), 70);
    assert!(read.files.values().all(|v| v.len() == 1_000_000));
}
