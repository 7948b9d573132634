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

/// `text` for one log line: newlines and other control characters escaped, so that text
/// from a file or a caller (a finding quoting a file's name or contents) can never start a
/// line of its own and forge a record.
pub fn for_log(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// At most `lines` lines and about `bytes` bytes of `text`, saying how much was left out:
/// a report that a hostile bundle makes huge (a finding per file) stays small where it is
/// shown and kept.
pub fn truncated(text: String, lines: usize, bytes: usize) -> String {
    let total = text.lines().count();
    let mut kept = String::new();
    let mut shown = 0;
    for line in text.lines() {
        if shown == lines || kept.len() + line.len() > bytes {
            if shown == 0 {
                // One line longer than the whole budget: its start, rather than nothing.
                let mut end = bytes.min(line.len());
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                kept.push_str(&line[..end]);
                kept.push_str(" ...");
                shown = 1;
            }
            break;
        }
        if shown > 0 {
            kept.push('\n');
        }
        kept.push_str(line);
        shown += 1;
    }
    if shown == total {
        return if kept.len() < text.len() { kept } else { text };
    }
    kept.push_str(&format!("\n... and {} more lines", total - shown));
    kept
}

#[cfg(test)]
mod tests;
