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
    f.bundle()
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
        assert_eq!(f.bundle(), Ok(files(&[("a.json", "1"), ("b.json", "2")])));
    }
    // A good value put over a refused one clears it too.
    let mut f = Files::read(PREFIX, Ok(files(&[])));
    f.apply(&event(
        mvccpb::event::EventType::Put,
        b"/warden/bundle/bin.json",
        b"\xff",
    ));
    f.apply(&put("/warden/bundle/bin.json", "{}"));
    assert_eq!(f.bundle(), Ok(files(&[("bin.json", "{}")])));
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
