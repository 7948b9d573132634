use super::{join, report};

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on `127.0.0.1:1`: {source}")]
struct Bind {
    source: std::io::Error,
}

#[derive(Debug, thiserror::Error)]
#[error("transport error")]
struct Transport(#[source] Inner);

#[derive(Debug, thiserror::Error)]
#[error("transport error")]
struct Inner(#[source] std::io::Error);

#[test]
fn a_cause_the_error_already_states_is_not_repeated() {
    let e = Bind {
        source: std::io::Error::from_raw_os_error(98),
    };
    assert_eq!(
        report(&e),
        "cannot listen on `127.0.0.1:1`: Address already in use (os error 98)"
    );
}

#[test]
fn a_cause_under_the_same_words_is_said_once() {
    let e = Transport(Inner(std::io::Error::other("connection reset")));
    assert_eq!(report(&e), "transport error: connection reset");
}

#[test]
fn distinct_causes_are_all_said() {
    assert_eq!(
        join([
            "reading `a.json`".to_owned(),
            String::new(),
            "denied".to_owned()
        ]),
        "reading `a.json`: denied"
    );
}
