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
fn the_digest_is_sha256_of_length_prefixed_paths_and_their_texts_sha256() {
    // Computed independently: printf with the path's little-endian length and the path,
    // then the text's SHA-256 as bytes, all through sha256sum:
    // { printf '\x01\0\0\0\0\0\0\0a'; printf '{}' | sha256sum | cut -c1-64 | xxd -r -p; } | sha256sum
    assert_eq!(
        of_files(&files(&[("a", "{}")])),
        "a08eadf37e398750e8e45b3afb6943a377120c2fd90b2b419fcbaa44fb196b09"
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
