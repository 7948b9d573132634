//! Unit tests of policy validation.

use super::compact_size;
use crate::json;

/// The size AWS counts is the compact serialization's length; `compact_size` counts it
/// without serializing, so it must agree with serializing for every kind of value.
#[test]
fn compact_size_counts_the_compact_serialization() {
    let docs = [
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        "{ \"a\" : [ 1 , 2.50 , -0.5e3 , 1E400 , true , false , null ] , \"b\" : { } , \"c\" : [ ] }",
        r#"{"esc":"q\" b\\ s\/ \b\f\n\r\t \u0001 \u001f \u007f é 😀 \u00e9"}"#,
        r#"{"dup":1,"x":"y","dup":"longer value","dup":[1,2]}"#,
        r#"[]"#,
        &format!(
            "{{{}\"k3\":\"last\"}}",
            (0..40)
                .map(|i| format!("\"k{}\":{i},", i % 7))
                .collect::<String>()
        ),
        r#""just a string""#,
    ];
    for text in docs {
        let node = json::parse(text).unwrap();
        assert_eq!(
            compact_size(&node),
            node.to_serde().to_string().chars().count(),
            "{text}"
        );
    }
}
