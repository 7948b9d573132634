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

#[test]
fn a_log_line_cannot_be_split_by_the_text_it_carries() {
    let forged = "bad `x\n2026-12-02T00:00:00Z  INFO snapshot published\r\u{1b}[2K`";
    assert_eq!(
        super::for_log(forged),
        "bad `x\\n2026-12-02T00:00:00Z  INFO snapshot published\\r\\u{1b}[2K`"
    );
    assert_eq!(super::for_log("é ok"), "é ok");
}

#[test]
fn a_long_report_keeps_its_first_lines_and_says_how_many_are_left_out() {
    let text: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    let text = text.trim_end().to_owned();
    assert_eq!(super::truncated(text.clone(), 10, 1000), text);
    assert_eq!(
        super::truncated(text.clone(), 3, 1000),
        "line 1\nline 2\nline 3\n... and 7 more lines"
    );
    assert_eq!(
        super::truncated(text, 10, 14),
        "line 1\nline 2\n... and 8 more lines"
    );
}

#[test]
fn a_line_longer_than_the_whole_report_keeps_its_start() {
    let long = format!("bad `{}`", "é".repeat(100));
    assert_eq!(super::truncated(long.clone(), 50, 8), "bad `é ...");
    assert_eq!(
        super::truncated(format!("{long}\nnext"), 50, 9),
        "bad `éé ...\n... and 1 more lines"
    );
}
