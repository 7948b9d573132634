#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use super::*;

const PREFIX: &str = "/warden/bundle/";

fn event(kind: mvccpb::event::EventType, key: &[u8], value: &[u8]) -> mvccpb::Event {
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(mvccpb::KeyValue {
            key: key.to_vec(),
            value: value.to_vec(),
            mod_revision: 7,
            ..Default::default()
        }),
        prev_kv: None,
    }
}

fn put(key: &str, value: &str) -> mvccpb::Event {
    event(
        mvccpb::event::EventType::Put,
        key.as_bytes(),
        value.as_bytes(),
    )
}

fn delete(key: &str) -> mvccpb::Event {
    event(mvccpb::event::EventType::Delete, key.as_bytes(), b"")
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Applies `events` to files read as `start`: the bundle then offered.
fn check(
    start: &[(&str, &str)],
    events: &[mvccpb::Event],
) -> Result<BTreeMap<String, String>, String> {
    let mut f = Files::read(PREFIX, Ok(files(start)));
    for e in events {
        f.apply(e);
    }
    f.bundle().map(|files| owned(&files))
}

/// Files as the source offers them, as owned texts.
fn owned(files: &crate::bundle::SharedFiles) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.clone(), t.to_string()))
        .collect()
}

#[test]
fn puts_and_deletes_change_the_documents() {
    type Pairs = &'static [(&'static str, &'static str)];
    let cases: &[(Pairs, Vec<mvccpb::Event>, Pairs)] = &[
        (
            &[],
            vec![put("/warden/bundle/a.json", "1")],
            &[("a.json", "1")],
        ),
        (
            &[("a.json", "1")],
            vec![put("/warden/bundle/a.json", "2")],
            &[("a.json", "2")],
        ),
        (
            &[("a.json", "1"), ("b/c.json", "3")],
            vec![delete("/warden/bundle/a.json")],
            &[("b/c.json", "3")],
        ),
        (&[], vec![delete("/warden/bundle/none.json")], &[]),
        (
            &[],
            vec![
                put("/warden/bundle/a.json", "1"),
                delete("/warden/bundle/a.json"),
            ],
            &[],
        ),
    ];
    for (start, events, want) in cases {
        assert_eq!(
            check(start, events),
            Ok(files(want)),
            "{start:?} {events:?}"
        );
    }
}

#[test]
fn a_hostile_key_or_value_fails_the_bundle_by_name_until_it_is_gone() {
    let big = "x".repeat(usize::try_from(crate::bundle::MAX_FILE_BYTES).unwrap() + 1);
    let cases: Vec<(mvccpb::Event, &[u8], &str)> = vec![
        (
            put("/warden/bundle/../x.json", "{}"),
            b"/warden/bundle/../x.json",
            "etcd key `/warden/bundle/../x.json`: the path has a `..` component",
        ),
        (
            put("/warden/bundle/a//b.json", "{}"),
            b"/warden/bundle/a//b.json",
            "etcd key `/warden/bundle/a//b.json`: the path has an empty component",
        ),
        (
            event(
                mvccpb::event::EventType::Put,
                b"/warden/bundle/bin.json",
                b"\xff",
            ),
            b"/warden/bundle/bin.json",
            "etcd key `/warden/bundle/bin.json`: the value is not UTF-8 text",
        ),
        (
            put("/warden/bundle/big.json", &big),
            b"/warden/bundle/big.json",
            "etcd key `/warden/bundle/big.json`: 1048577 bytes, above the limit",
        ),
    ];
    for (bad, key, named) in cases {
        let mut f = Files::read(PREFIX, Ok(files(&[("a.json", "1")])));
        f.apply(&bad);
        let e = f.bundle().unwrap_err();
        assert!(e.starts_with(named), "{e}");
        // A later good change elsewhere does not hide it.
        f.apply(&put("/warden/bundle/b.json", "2"));
        assert!(f.bundle().unwrap_err().starts_with(named));
        // Deleting the key clears it.
        f.apply(&event(mvccpb::event::EventType::Delete, key, b""));
        assert_eq!(
            f.bundle().map(|f| owned(&f)),
            Ok(files(&[("a.json", "1"), ("b.json", "2")]))
        );
    }
    // A good value put over a refused one clears it too.
    let mut f = Files::read(PREFIX, Ok(files(&[])));
    f.apply(&event(
        mvccpb::event::EventType::Put,
        b"/warden/bundle/bin.json",
        b"\xff",
    ));
    f.apply(&put("/warden/bundle/bin.json", "{}"));
    assert_eq!(
        f.bundle().map(|f| owned(&f)),
        Ok(files(&[("bin.json", "{}")]))
    );
}

#[test]
fn a_long_hostile_key_is_named_shortened() {
    let key = format!("/warden/bundle/{}/../x.json", "é".repeat(400));
    let e = check(&[], &[put(&key, "{}")]).unwrap_err();
    assert!(e.len() < 400, "{e}");
    assert!(e.contains("...`"), "{e}");
}

#[test]
fn a_refused_read_leaves_the_files_unknown_and_ignores_events() {
    let refused = EtcdError::Content {
        key: "/warden/bundle/../x.json".to_owned(),
        message: "the path has a `..` component".to_owned(),
    };
    let mut f = Files::read(PREFIX, Err(refused));
    assert!(f.is_unknown());
    f.apply(&delete("/warden/bundle/../x.json"));
    assert!(f.is_unknown(), "only a whole read knows the files again");
    assert_eq!(
        f.bundle().unwrap_err(),
        "etcd key `/warden/bundle/../x.json`: the path has a `..` component"
    );
}

#[test]
fn past_the_bundle_limits_the_files_are_dropped_and_unknown() {
    let mut f = Files::read(PREFIX, Ok(BTreeMap::new()));
    // Refused keys count as entries: a hostile writer cannot grow memory with them.
    for n in 0..=crate::bundle::dir::MAX_ENTRIES {
        f.apply(&put(&format!("/warden/bundle/{n}/../x.json"), "{}"));
    }
    assert!(f.is_unknown());
    assert!(f.refused.is_empty() && f.documents.is_empty());
    assert!(f.bundle().unwrap_err().contains("more than 100000 keys"));

    let mut f = Files::read(PREFIX, Ok(BTreeMap::new()));
    let text = "x".repeat(usize::try_from(crate::bundle::MAX_FILE_BYTES).unwrap());
    let n = crate::bundle::dir::MAX_BUNDLE_BYTES / crate::bundle::MAX_FILE_BYTES;
    for i in 0..n {
        f.apply(&put(&format!("/warden/bundle/{i}.json"), &text));
    }
    assert!(!f.is_unknown(), "at the limit");
    f.apply(&put("/warden/bundle/one-more.json", "x"));
    assert!(f.bundle().unwrap_err().contains("bytes (a bundle's limit)"));
}

#[test]
fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
    let mut b = Backoff::new(min, max);
    let steps: Vec<Duration> = (0..8).map(|_| b.next()).collect();
    for (i, step) in steps.iter().enumerate() {
        let full = (min * 2u32.pow(u32::try_from(i).unwrap())).min(max);
        assert!(
            *step >= full / 2 && *step <= full,
            "step {i}: {step:?} for {full:?}"
        );
    }
    b.reset();
    assert!(b.next() <= min);
}

// === batching ===

fn at(mut e: mvccpb::Event, revision: i64) -> mvccpb::Event {
    if let Some(kv) = &mut e.kv {
        kv.mod_revision = revision;
    }
    e
}

fn response(events: Vec<mvccpb::Event>) -> rpc::WatchResponse {
    rpc::WatchResponse {
        events,
        ..Default::default()
    }
}

type Responses = mpsc::Sender<Result<rpc::WatchResponse, tonic::Status>>;
type Stream = tokio_stream::wrappers::ReceiverStream<Result<rpc::WatchResponse, tonic::Status>>;

/// A follower that has read `a.json` at revision 4, with what it offers, and a watch
/// stream the test feeds.
fn follower(debounce: Duration) -> (Follower, watch::Receiver<Following>, Responses, Stream) {
    let (tx, rx) = watch::channel(Following::default());
    let config = EtcdConfig {
        debounce,
        ..EtcdConfig::default()
    };
    let follower = Follower {
        etcd: Etcd::new(&["http://127.0.0.1:9".to_owned()]).unwrap(),
        prefix: PREFIX.to_owned(),
        config,
        files: Files::read(PREFIX, Ok(files(&[("a.json", "1")]))),
        tx,
        contact: Arc::new(Contact::new(config.stale_after())),
        resync: Arc::new(Notify::new()),
        stop: CancellationToken::new(),
        offered: 4,
        taken: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        backoff: Backoff::new(config.backoff_min, config.backoff_max),
    };
    let (feed, queue) = mpsc::channel(16);
    (
        follower,
        rx,
        feed,
        tokio_stream::wrappers::ReceiverStream::new(queue),
    )
}

/// A bundle offered: its revision, and its files or why it cannot load.
type Offer = (u64, Result<BTreeMap<String, String>, String>);

/// The offers made so far: how many, and the last one.
fn offered(rx: &watch::Receiver<Following>) -> (u64, Option<Offer>) {
    let f = rx.borrow();
    let last = f
        .offer
        .clone()
        .map(|(r, files)| (r, files.map(|f| owned(&f))));
    (f.seq, last)
}

#[tokio::test(start_paused = true)]
async fn a_change_after_the_source_fetched_the_offer_edits_the_files_in_place() {
    let (mut f, rx, _feed, mut stream) = follower(Duration::ZERO);
    let first = response(vec![at(put("/warden/bundle/b.json", "2"), 5)]);
    assert!(matches!(f.batch(first, &mut stream).await, Batch::Go));
    let map = Arc::as_ptr(&f.files.documents);
    // Not fetched yet: a change keeps the offer whole (and copies the map it shares).
    let second = response(vec![at(put("/warden/bundle/c.json", "3"), 6)]);
    assert!(matches!(f.batch(second, &mut stream).await, Batch::Go));
    assert_eq!(
        offered(&rx),
        (
            2,
            Some((
                6,
                Ok(files(&[("a.json", "1"), ("b.json", "2"), ("c.json", "3")]))
            ))
        )
    );
    assert_ne!(Arc::as_ptr(&f.files.documents), map);
    // Fetched, as the source does, and loaded: the next change edits the map in place,
    // and a later offer holds the change.
    let fetched = rx.borrow().clone();
    f.taken
        .store(fetched.seq, std::sync::atomic::Ordering::Release);
    drop(fetched);
    let map = Arc::as_ptr(&f.files.documents);
    let third = response(vec![at(put("/warden/bundle/d.json", "4"), 7)]);
    assert!(matches!(f.batch(third, &mut stream).await, Batch::Go));
    assert_eq!(Arc::as_ptr(&f.files.documents), map);
    assert_eq!(
        offered(&rx),
        (
            3,
            Some((
                7,
                Ok(files(&[
                    ("a.json", "1"),
                    ("b.json", "2"),
                    ("c.json", "3"),
                    ("d.json", "4")
                ]))
            ))
        )
    );
}

#[tokio::test(start_paused = true)]
async fn responses_already_queued_join_one_offer_under_the_highest_revision() {
    let (mut f, rx, feed, mut stream) = follower(Duration::ZERO);
    feed.send(Ok(response(vec![
        at(put("/warden/bundle/b.json", "2"), 6),
        at(put("/warden/bundle/c.json", "3"), 6),
    ])))
    .await
    .unwrap();
    feed.send(Ok(response(vec![at(delete("/warden/bundle/a.json"), 7)])))
        .await
        .unwrap();
    let first = response(vec![at(put("/warden/bundle/a.json", "new"), 5)]);
    assert!(matches!(f.batch(first, &mut stream).await, Batch::Go));
    assert_eq!(
        offered(&rx),
        (1, Some((7, Ok(files(&[("b.json", "2"), ("c.json", "3")])))))
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_within_the_debounce_joins_and_one_after_it_waits_for_the_next() {
    let debounce = Duration::from_millis(100);
    let (mut f, rx, feed, mut stream) = follower(debounce);
    let late = feed.clone();
    tokio::spawn(async move {
        tokio::time::sleep(debounce / 2).await;
        feed.send(Ok(response(vec![at(put("/warden/bundle/b.json", "2"), 6)])))
            .await
            .unwrap();
        tokio::time::sleep(debounce).await;
        late.send(Ok(response(vec![at(put("/warden/bundle/c.json", "3"), 7)])))
            .await
            .unwrap();
    });
    let first = response(vec![at(put("/warden/bundle/a.json", "new"), 5)]);
    assert!(matches!(f.batch(first, &mut stream).await, Batch::Go));
    assert_eq!(
        offered(&rx),
        (
            1,
            Some((6, Ok(files(&[("a.json", "new"), ("b.json", "2")]))))
        )
    );
    // The late one is the next batch's.
    use tokio_stream::StreamExt as _;
    let next = stream.next().await.unwrap().unwrap();
    assert_eq!(next.events[0].kv.as_ref().unwrap().mod_revision, 7);
}

#[tokio::test(start_paused = true)]
async fn what_was_applied_is_offered_before_a_compaction_or_a_lost_watch_ends_the_batch() {
    let compacted = rpc::WatchResponse {
        compact_revision: 9,
        canceled: true,
        ..Default::default()
    };
    let (mut f, rx, feed, mut stream) = follower(Duration::from_millis(10));
    feed.send(Ok(compacted)).await.unwrap();
    let first = response(vec![at(put("/warden/bundle/b.json", "2"), 5)]);
    let ended = f.batch(first, &mut stream).await;
    assert!(matches!(
        ended,
        Batch::End(Ended::Resync(Resync::Compacted))
    ));
    assert_eq!(offered(&rx).1.unwrap().0, 5);

    let (mut f, rx, feed, mut stream) = follower(Duration::from_millis(10));
    feed.send(Err(tonic::Status::unavailable("gone")))
        .await
        .unwrap();
    let first = response(vec![at(put("/warden/bundle/b.json", "2"), 5)]);
    let ended = f.batch(first, &mut stream).await;
    assert!(matches!(ended, Batch::End(Ended::Lost(m)) if m.contains("gone")));
    assert_eq!(offered(&rx).1.unwrap().0, 5);
}

#[tokio::test(start_paused = true)]
async fn a_progress_notification_offers_nothing_and_a_hostile_put_offers_its_refusal() {
    let (mut f, rx, _feed, mut stream) = follower(Duration::ZERO);
    let progress = rpc::WatchResponse {
        header: Some(rpc::ResponseHeader {
            revision: 40,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(matches!(f.batch(progress, &mut stream).await, Batch::Go));
    assert_eq!(offered(&rx), (0, None));
    assert_eq!(f.contact.freshness().source_revision, 40);

    let hostile = response(vec![at(put("/warden/bundle/../x.json", "{}"), 41)]);
    assert!(matches!(f.batch(hostile, &mut stream).await, Batch::Go));
    let (_, last) = offered(&rx);
    let (revision, bundle) = last.unwrap();
    assert_eq!(revision, 41);
    assert!(bundle.unwrap_err().contains("`/warden/bundle/../x.json`"));
}

#[tokio::test(start_paused = true)]
async fn a_change_while_the_files_are_unknown_reads_them_again() {
    let (mut f, rx, _feed, mut stream) = follower(Duration::ZERO);
    f.files = Files::read(
        PREFIX,
        Err(EtcdError::TooLarge {
            prefix: PREFIX.to_owned(),
            message: "too many".to_owned(),
        }),
    );
    let change = response(vec![at(delete("/warden/bundle/a.json"), 5)]);
    let ended = f.batch(change, &mut stream).await;
    assert!(matches!(ended, Batch::End(Ended::Resync(Resync::Content))));
    assert_eq!(
        offered(&rx),
        (0, None),
        "nothing offered from unknown files"
    );
}
