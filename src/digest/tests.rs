use std::collections::BTreeMap;

use super::of_files;

fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn the_digest_is_sha256_of_length_prefixed_paths_and_texts() {
    // Computed independently: printf with the little-endian lengths, then sha256sum.
    // printf '\x01\0\0\0\0\0\0\0a\x02\0\0\0\0\0\0\0{}' | sha256sum
    assert_eq!(
        of_files(&files(&[("a", "{}")])),
        "4bbd66e47d3b1983210abdc04cad56d4c3a6971b266cf17f8ce60a70bfb36ee7"
    );
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
