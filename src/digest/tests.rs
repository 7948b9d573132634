use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Cache, of_files};

fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn the_digest_is_sha256_of_runs_of_length_prefixed_paths_and_their_texts_sha256() {
    // Computed independently (Python's hashlib): a file is its path's little-endian
    // 8-byte length, its path and its text's SHA-256; a run the same of its group and the
    // SHA-256 of its files; the digest the SHA-256 of the runs.
    //   add = lambda p, h: struct.pack('<Q', len(p)) + p + h
    //   run = sha256(add(b'a', sha256(b'{}').digest())).digest()
    //   sha256(add(b'a', run)).hexdigest()
    assert_eq!(
        of_files(&files(&[("a", "{}")])),
        "5e488343b7532d3df1b001e170fd2d13942e02aee35991d3278984fe4c7ddb6a"
    );
    // Two files of one account's group in one run, and a top-level file in its own:
    //   r1 = sha256(add(b'accounts/1/users/a.json', sha256(b'{"a":1}').digest())
    //               + add(b'accounts/1/users/b.json', sha256(b'{}').digest())).digest()
    //   r2 = sha256(add(b'organization.json', sha256(b'{}').digest())).digest()
    //   sha256(add(b'accounts/1/', r1) + add(b'organization.json', r2)).hexdigest()
    assert_eq!(
        of_files(&files(&[
            ("accounts/1/users/a.json", "{\"a\":1}"),
            ("accounts/1/users/b.json", "{}"),
            ("organization.json", "{}"),
        ])),
        "ed9d3b8c53e55ebf8abd56304f6d36fb2e9c60f9c7200456d737fe7c397bd108"
    );
}

fn shared(entries: &[(&str, &str)]) -> BTreeMap<String, Arc<str>> {
    crate::bundle::share(files(entries))
}

#[test]
fn a_shared_text_digests_as_an_owned_one() {
    let owned = files(&[("organization.json", "{}"), ("scps/A.json", "[]")]);
    let shared = crate::bundle::share(owned.clone());
    assert_eq!(of_files(&owned), of_files(&shared));
    assert_eq!(Cache::default().of_files(&owned), of_files(&owned));
    assert_eq!(Cache::default().of_files(&shared), of_files(&owned));
}

#[test]
fn the_cached_digest_is_the_digest_after_every_edit() {
    let mut cache = Cache::default();
    let mut now = shared(&[
        ("accounts/1/users/a.json", "{\"a\":1}"),
        ("organization.json", "{}"),
        ("scps/A.json", "[]"),
    ]);
    let mut seen = Vec::new();
    let mut step = |cache: &mut Cache, files: &BTreeMap<String, Arc<str>>| {
        let digest = cache.of_files(files);
        assert_eq!(digest, of_files(files), "{files:?}");
        seen.push(digest);
    };
    step(&mut cache, &now);
    // The same map again, every text by address.
    step(&mut cache, &now);
    // One text changed (a new allocation), the others the very same.
    let first: Arc<str> = now["scps/A.json"].clone();
    now.insert("scps/A.json".to_owned(), Arc::from("[1]"));
    step(&mut cache, &now);
    // Changed back: the earlier allocation again, then equal text in a new one.
    now.insert("scps/A.json".to_owned(), first);
    step(&mut cache, &now);
    now.insert("scps/A.json".to_owned(), Arc::from("[]"));
    step(&mut cache, &now);
    // A text of the same length, another byte.
    now.insert("organization.json".to_owned(), Arc::from("[]"));
    step(&mut cache, &now);
    // A path deleted, then added again with another text, then with its own.
    now.remove("accounts/1/users/a.json");
    step(&mut cache, &now);
    now.insert("accounts/1/users/a.json".to_owned(), Arc::from("{\"a\":2}"));
    step(&mut cache, &now);
    now.insert("accounts/1/users/a.json".to_owned(), Arc::from("{\"a\":1}"));
    step(&mut cache, &now);
    // Paths before, between and after every kept one; then owned texts, uncached.
    now.insert("0.json".to_owned(), Arc::from("0"));
    now.insert("b.json".to_owned(), Arc::from("b"));
    now.insert("z.json".to_owned(), Arc::from("z"));
    step(&mut cache, &now);
    let owned: BTreeMap<String, String> = now
        .iter()
        .map(|(p, t)| (p.clone(), t.to_string()))
        .collect();
    assert_eq!(cache.of_files(&owned), of_files(&now));
    step(&mut cache, &now);
    // Emptied.
    step(&mut cache, &BTreeMap::new());
    // The same files give the same digest, whatever the way there.
    assert_eq!(seen.first(), seen.get(1));
    assert_eq!(seen.get(1), seen.get(3));
    assert_eq!(seen.get(3), seen.get(4));
    assert_ne!(seen.get(1), seen.get(2));
}

#[test]
fn the_digest_follows_content_not_insertion_order() {
    let a = files(&[("organization.json", "{}"), ("scps/A.json", "[]")]);
    let mut b = BTreeMap::new();
    b.insert("scps/A.json".to_owned(), "[]".to_owned());
    b.insert("organization.json".to_owned(), "{}".to_owned());
    assert_eq!(of_files(&a), of_files(&b));
    assert_eq!(of_files(&a).len(), 64);
    // A byte moved from a text to a path is another bundle.
    assert_ne!(
        of_files(&files(&[("ab", "c")])),
        of_files(&files(&[("a", "bc")]))
    );
    assert_ne!(
        of_files(&a),
        of_files(&files(&[("organization.json", "{} ")]))
    );
}

#[test]
fn an_update_of_the_changed_files_is_the_digest_of_the_whole() {
    let mut now = shared(&[
        ("accounts/1/users/a.json", "{\"a\":1}"),
        ("accounts/1/users/b.json", "{}"),
        ("accounts/2/roles/r.json", "{}"),
        ("organization.json", "{}"),
        ("scps/A.json", "[]"),
    ]);
    let mut cache = Cache::default();
    assert_eq!(cache.of_files(&now), of_files(&now));
    // One text in the middle of a run, then the first and the last files, then two runs.
    for (changed, edits) in [
        (vec![1], vec![("accounts/1/users/b.json", "{\"b\":1}")]),
        (
            vec![0, 4],
            vec![("accounts/1/users/a.json", "{}"), ("scps/A.json", "[1]")],
        ),
        (
            vec![2, 3],
            vec![
                ("accounts/2/roles/r.json", "[]"),
                ("organization.json", "[]"),
            ],
        ),
    ] {
        for (path, text) in edits {
            now.insert(path.to_owned(), Arc::from(text));
        }
        assert_eq!(cache.update(&now, &changed, &[]).unwrap(), of_files(&now));
    }
    // Nothing changed: the same digest.
    assert_eq!(cache.update(&now, &[], &[]).unwrap(), of_files(&now));
    // A text given again as another allocation: the same digest, and the cache lets go of
    // the one it had.
    let old = now["organization.json"].clone();
    now.insert("organization.json".to_owned(), Arc::from(&*old));
    assert_eq!(cache.update(&now, &[], &[3]).unwrap(), of_files(&now));
    assert_eq!(Arc::strong_count(&old), 1);
    // Said to be the same text when it is not: not an update.
    now.insert("organization.json".to_owned(), Arc::from("{ }"));
    assert!(cache.update(&now, &[], &[3]).is_none());
    assert_eq!(cache.of_files(&now), of_files(&now));
    // Other paths than the cache's, or a text not shared: not an update.
    now.insert("z.json".to_owned(), Arc::from("z"));
    assert!(cache.update(&now, &[], &[]).is_none());
    assert_eq!(cache.of_files(&now), of_files(&now));
    let owned: BTreeMap<String, String> = now
        .iter()
        .map(|(p, t)| (p.clone(), t.to_string()))
        .collect();
    assert_eq!(cache.of_files(&owned), of_files(&now));
    assert!(cache.update(&now, &[], &[]).is_none());
}
