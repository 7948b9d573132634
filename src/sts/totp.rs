//! Time-based one-time passwords (RFC 6238) as virtual MFA devices make them: HMAC-SHA1,
//! 30-second steps, 6 digits. [`verify`] accepts a code of the current step or one step
//! either side (clock drift between the device and the server) and names the step that
//! matched, so its caller can refuse the same code twice (a replay).

use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;
use subtle::ConstantTimeEq as _;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW: u64 = 1;

/// The HOTP value (RFC 4226) of `secret` at `counter`, `digits` long (at most 9).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // SHA-1 is what RFC 6238 authenticators use; its weakness against collisions does not
    // reach HMAC.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let mut word = [0u8; 4];
    if let Some(bytes) = mac.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    let value = u32::from_be_bytes(word) & 0x7fff_ffff;
    value % 10u32.pow(digits.min(9))
}

/// The code of `secret` at `unix` seconds, [`DIGITS`] digits with leading zeros.
pub fn code_at(secret: &[u8], unix: u64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, unix / STEP, DIGITS),
        width = DIGITS as usize
    )
}

/// The step `now` falls in.
pub fn step_of(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) / STEP
}

/// Whether `code` is the code of `secret` at a step within `window` steps of `now`'s:
/// the matched step, or `None`. A code that is not exactly [`DIGITS`] ASCII digits never
/// matches. Every step of the window is computed and compared in constant time, so the
/// time taken does not say which step (or digit) was close.
pub fn verify(secret: &[u8], code: &str, now: SystemTime, window: u64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut matched = None;
    for step in current.saturating_sub(window)..=current.saturating_add(window) {
        let expected = format!(
            "{:0width$}",
            hotp(secret, step, DIGITS),
            width = DIGITS as usize
        );
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(RFC_SECRET, counter as u64, 6),
                want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // Appendix B, the SHA-1 column (8 digits); 6-digit codes are their last six.
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (t, want) in vectors {
            assert_eq!(hotp(RFC_SECRET, t / STEP, 8), want, "T = {t}");
            assert_eq!(code_at(RFC_SECRET, t), format!("{:06}", want % 1_000_000));
        }
        assert_eq!(code_at(RFC_SECRET, 1111111109), "081804");
    }

    #[test]
    fn verify_accepts_one_step_either_side_and_names_it() {
        let now = UNIX_EPOCH + Duration::from_secs(1_111_111_111);
        let step = 1_111_111_111 / STEP;
        for (t, want) in [
            (1_111_111_111, Some(step)),
            (1_111_111_111 - 30, Some(step - 1)),
            (1_111_111_111 + 30, Some(step + 1)),
            (1_111_111_111 - 60, None),
            (1_111_111_111 + 60, None),
        ] {
            assert_eq!(
                verify(RFC_SECRET, &code_at(RFC_SECRET, t), now, WINDOW),
                want,
                "{t}"
            );
        }
        for bad in ["", "12345", "1234567", "12345a", " 50471", "050471\n"] {
            assert_eq!(verify(RFC_SECRET, bad, now, WINDOW), None, "{bad:?}");
        }
        assert_eq!(
            verify(
                b"another secret",
                &code_at(RFC_SECRET, 1_111_111_111),
                now,
                0
            ),
            None
        );
    }
}
