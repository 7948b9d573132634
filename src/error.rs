//! Errors as one line for people: an error and its causes, each said once.

use std::error::Error;

/// `error: cause: cause`, skipping a cause that the line already ends with: many errors
/// repeat their source's text in their own (`Address already in use (os error 98)` would
/// otherwise appear twice), and some wrap it under the same words (`transport error`).
pub fn report(e: &(dyn Error + 'static)) -> String {
    let mut texts = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        texts.push(e.to_string());
        next = e.source();
    }
    join(texts)
}

/// Like [`report`], over the texts of a chain given in order (an `anyhow` chain).
pub fn join(texts: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for text in texts {
        if text.is_empty() || line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// An I/O error's text, for messages that name what failed themselves.
pub fn cause(e: &std::io::Error) -> String {
    report(e)
}

#[cfg(test)]
mod tests;
