//! What-if replay of the decision log (`warden replay`): each logged decision is decided
//! again against a candidate snapshot — with the engine the service uses
//! (`Snapshot::resolve` then `Snapshot::decide`, at the record's time, with its screened
//! context and its session's facts) — and compared with the logged decision, or with the
//! same record decided again against a baseline snapshot.
//!
//! The log is hostile input: a line is read within a byte limit, parsed strictly (unknown
//! fields refused) and bounded as the service bounds a request; a bad line is counted and
//! reported by its number, never fatal. A record that cannot be decided as it was (see
//! [`NotReplayable`]) is counted by why, never decided on a guess. Lines are decided on
//! every core, in chunks.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::caller::Session;
use crate::context::{CallerContext, CallerView, Context, ContextValue};
use crate::eval::{Decision, Reason};
use crate::request::{Action, parse_resource};
use crate::service::{Limits, MAX_KEY_BYTES, MAX_NAME_BYTES, MAX_VALUE_BYTES};
use crate::snapshot::{Question, Snapshot};
use crate::telemetry::{NotReplayable, RECORD_CONTEXT_BYTES};

/// Bytes in one log line, at most, by default: a record is a few hundred bytes, and at
/// most about 60 KiB with its context and session facts at their limits.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Example records kept per group of changes.
pub const EXAMPLES: usize = 3;
/// Bad lines reported by number (all are counted).
pub const BAD_LINES_REPORTED: usize = 20;
/// Lines decided per chunk handed to a worker.
const CHUNK_LINES: usize = 4096;
/// Session tags and managed session policy ARNs a record may carry (STS's limits).
const MAX_SESSION_TAGS: usize = crate::sts::assume::MAX_TAGS;
const MAX_SESSION_POLICY_ARNS: usize = crate::sts::assume::MAX_POLICY_ARNS;

// === the log's lines ===

/// One line of the decision log as written by [`crate::telemetry::DecisionRecord`]; the
/// fields a line written before context was recorded lacks are optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Logged<'a> {
    ts_ms: u64,
    #[serde(borrow)]
    face: Cow<'a, str>,
    #[serde(borrow)]
    decision_id: Cow<'a, str>,
    #[allow(dead_code)]
    revision: u64,
    #[serde(borrow)]
    principal: Cow<'a, str>,
    #[serde(borrow)]
    caller: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    #[serde(borrow)]
    decision: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
    #[allow(dead_code)]
    statements: serde::de::IgnoredAny,
    #[allow(dead_code)]
    cached: bool,
    #[serde(default, borrow, deserialize_with = "context_entries")]
    context: Option<Entries<'a>>,
    #[serde(default)]
    session: Option<LoggedSession>,
    #[serde(default, borrow)]
    not_replayable: Option<Cow<'a, str>>,
}

/// A logged context's entries, in the line's order.
type Entries<'a> = Vec<(Cow<'a, str>, LoggedValue<'a>)>;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LoggedValue<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggedSession {
    issued_at_ms: u64,
    #[serde(default)]
    mfa_at_ms: Option<u64>,
    #[serde(default)]
    source_identity: Option<String>,
    #[serde(default)]
    tags: Vec<(String, String)>,
    #[serde(default)]
    policy_arns: Vec<String>,
}

/// Reads a JSON object as its entries in order (duplicates kept, for the context check
/// to refuse).
fn entries<'de, D, V>(d: D) -> Result<Vec<(Cow<'de, str>, V)>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
        type Value = Vec<(Cow<'de, str>, V)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of context keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<CowStr<'de>, V>()? {
                out.push((k.0, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Entries(std::marker::PhantomData))
}

/// A string borrowed from the line when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CowStr<'de>, D::Error> {
        Cow::<'de, str>::deserialize(d).map(CowStr)
    }
}

/// A record's `context`: an object's entries in order, duplicates kept (for
/// [`check_context`] to refuse).
fn context_entries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Entries<'de>>, D::Error> {
    entries(d).map(Some)
}

// === verdicts ===

/// What a record was, or would be, answered: a decision and its reason, or a refusal of
/// the request (the candidate's catalog lacks the action, its partition differs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Verdict {
    /// `Allow`, `ExplicitDeny`, `ImplicitDeny`, or `Refused`.
    pub decision: Cow<'static, str>,
    /// The reason code (`invalid_request` for a refusal).
    pub reason: Cow<'static, str>,
}

impl Verdict {
    fn decided(decision: Decision, reason: Reason) -> Verdict {
        Verdict {
            decision: Cow::Borrowed(decision.as_str()),
            reason: Cow::Borrowed(reason.as_str()),
        }
    }

    fn refused() -> Verdict {
        Verdict {
            decision: Cow::Borrowed("Refused"),
            reason: Cow::Borrowed("invalid_request"),
        }
    }

    /// A logged decision: a known decision, its reason kept as logged.
    fn logged(decision: &str, reason: &str) -> Result<Verdict, String> {
        let d = [
            Decision::Allow,
            Decision::ExplicitDeny,
            Decision::ImplicitDeny,
        ]
        .into_iter()
        .find(|d| d.as_str() == decision)
        .ok_or_else(|| format!("`decision`: unknown decision `{}`", clip(decision)))?;
        if reason.is_empty() || reason.len() > 64 {
            return Err("`reason`: not a reason code".to_owned());
        }
        let reason = match Reason::all().find(|r| r.as_str() == reason) {
            Some(r) => Cow::Borrowed(r.as_str()),
            None => Cow::Owned(reason.to_owned()),
        };
        Ok(Verdict {
            decision: Cow::Borrowed(d.as_str()),
            reason,
        })
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.decision, self.reason)
    }
}

/// A value of a hostile line, shortened for a message.
fn clip(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

// === the tally ===

/// Changes of one principal, action and pair of verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub principal: String,
    pub action: String,
    pub from: Verdict,
    pub to: Verdict,
}

/// One changed record, as an example of its group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Example {
    /// Its line number in the log (from 1).
    pub line: u64,
    pub decision_id: String,
    pub resource: String,
    /// Why the candidate (or the baseline) refused it, for a refusal.
    pub refusal: Option<String>,
}

/// Changes of one group: how many, and the first few by line.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub count: u64,
    pub examples: Vec<Example>,
}

/// What a replay found.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Non-empty lines read.
    pub lines: u64,
    /// Records decided again.
    pub replayed: u64,
    /// Of those, decided as before (decision and reason).
    pub unchanged: u64,
    /// Of those, decided otherwise: a decision or a reason changed.
    pub changed: u64,
    /// Of the changed, those whose decision changed (a flip), not only the reason.
    pub flipped: u64,
    /// Check records, decided on the route (action and resource) they were logged with:
    /// the candidate's listeners are not applied again.
    pub check_on_logged_route: u64,
    /// Records that cannot be replayed, by why.
    pub not_replayable: BTreeMap<NotReplayable, u64>,
    /// Lines that are not a record, counted; the first few reported with their number.
    pub bad_lines: u64,
    pub bad: Vec<(u64, String)>,
    pub groups: HashMap<GroupKey, Group>,
}

impl Tally {
    fn bad_line(&mut self, line: u64, message: String) {
        self.bad_lines += 1;
        self.bad.push((line, message));
        if self.bad.len() > BAD_LINES_REPORTED {
            self.bad.sort_unstable();
            self.bad.truncate(BAD_LINES_REPORTED);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.lines += other.lines;
        self.replayed += other.replayed;
        self.unchanged += other.unchanged;
        self.changed += other.changed;
        self.flipped += other.flipped;
        self.check_on_logged_route += other.check_on_logged_route;
        for (why, n) in other.not_replayable {
            *self.not_replayable.entry(why).or_default() += n;
        }
        self.bad_lines += other.bad_lines;
        self.bad.extend(other.bad);
        self.bad.sort_unstable();
        self.bad.truncate(BAD_LINES_REPORTED);
        for (key, group) in other.groups {
            let mine = self.groups.entry(key).or_default();
            mine.count += group.count;
            mine.examples.extend(group.examples);
            mine.examples.sort_unstable();
            mine.examples.truncate(EXAMPLES);
        }
    }

    /// The groups, largest first, then by principal, action and verdicts.
    pub fn groups_sorted(&self) -> Vec<(&GroupKey, &Group)> {
        let mut groups: Vec<_> = self.groups.iter().collect();
        groups.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        groups
    }

    /// Records that were not decided again: bad lines and records not replayable.
    pub fn skipped(&self) -> u64 {
        self.bad_lines + self.not_replayable.values().sum::<u64>()
    }
}

// === replay ===

/// What each record is compared with.
pub enum Against<'a> {
    /// The decision the log holds.
    Logged,
    /// The same record decided against this snapshot.
    Baseline(&'a Snapshot),
}

/// How a replay reads the log.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Bytes in one line, at most.
    pub max_line_bytes: usize,
    /// Worker threads (at least one).
    pub jobs: usize,
    /// Bounds on a record's context, as the service's on a request's.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_line_bytes: MAX_LINE_BYTES,
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            limits: Limits::default(),
        }
    }
}

/// Replays every line of `log` against `candidate`. `Err` only when the log cannot be
/// read; every bad line is in the tally.
pub fn replay(
    log: &mut dyn BufRead,
    candidate: &Snapshot,
    against: &Against<'_>,
    config: &Config,
) -> std::io::Result<Tally> {
    let jobs = config.jobs.max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(u64, Line)>>(jobs * 2);
    let rx = Mutex::new(rx);
    let tallies = Mutex::new(Vec::with_capacity(jobs));
    let read = std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut tally = Tally::default();
                loop {
                    let chunk = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(chunk) = chunk else { break };
                    for (n, line) in chunk {
                        one_line(&mut tally, n, line, candidate, against, config);
                    }
                }
                tallies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(tally);
            });
        }
        let read = read_chunks(log, config.max_line_bytes, |chunk| tx.send(chunk).is_ok());
        drop(tx);
        read
    });
    read?;
    let mut total = Tally::default();
    for t in tallies.into_inner().unwrap_or_else(PoisonError::into_inner) {
        total.merge(t);
    }
    Ok(total)
}

/// A line as read: its text, or how long it was when it was too long.
enum Line {
    Text(Vec<u8>),
    TooLong(usize),
}

/// Reads lines within `max` bytes each into chunks for `send`, until the end or until
/// `send` refuses.
fn read_chunks(
    log: &mut dyn BufRead,
    max: usize,
    mut send: impl FnMut(Vec<(u64, Line)>) -> bool,
) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(CHUNK_LINES);
    let mut n: u64 = 0;
    while let Some(line) = read_line(log, max)? {
        n += 1;
        chunk.push((n, line));
        if chunk.len() == CHUNK_LINES
            && !send(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(CHUNK_LINES),
            ))
        {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        send(chunk);
    }
    Ok(())
}

/// One line without its end, within `max` bytes: a longer one is skipped to its end
/// without being kept. `None` at the end of the input.
fn read_line(log: &mut dyn BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut text = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let buf = match log.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (part, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (buf.get(..i).unwrap_or_default(), Some(i + 1)),
            None => (buf, None),
        };
        len = len.saturating_add(part.len());
        if len <= max {
            text.extend_from_slice(part);
        } else if !text.is_empty() {
            text = Vec::new();
        }
        let used = end.unwrap_or(buf.len());
        log.consume(used);
        if end.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if text.last() == Some(&b'\r') {
        text.pop();
    }
    Ok(Some(if len > max {
        Line::TooLong(len)
    } else {
        Line::Text(text)
    }))
}

fn one_line(
    tally: &mut Tally,
    n: u64,
    line: Line,
    candidate: &Snapshot,
    against: &Against<'_>,
    config: &Config,
) {
    let text = match line {
        Line::TooLong(len) => {
            tally.lines += 1;
            return tally.bad_line(
                n,
                format!(
                    "the line is {len} bytes, longer than the limit of {}",
                    config.max_line_bytes
                ),
            );
        }
        Line::Text(text) => text,
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    tally.lines += 1;
    let record: Logged<'_> = match serde_json::from_slice(&text) {
        Ok(r) => r,
        Err(e) => return tally.bad_line(n, format!("not a decision record: {e}")),
    };
    match Record::check(&record, &config.limits) {
        Ok(Ok(r)) => r.replay(tally, n, candidate, against),
        Ok(Err(why)) => *tally.not_replayable.entry(why).or_default() += 1,
        Err(message) => tally.bad_line(n, message),
    }
}

/// A record within its bounds, ready to decide again.
struct Record<'r> {
    line: &'r Logged<'r>,
    logged: Verdict,
    at: SystemTime,
    context: Context,
    session: Option<Session>,
}

impl<'r> Record<'r> {
    /// `Err`: a bad line; `Ok(Err)`: a record that cannot be replayed.
    #[allow(clippy::type_complexity)]
    fn check(
        line: &'r Logged<'r>,
        limits: &Limits,
    ) -> Result<Result<Record<'r>, NotReplayable>, String> {
        for (name, value) in [
            ("principal", &line.principal),
            ("action", &line.action),
            ("resource", &line.resource),
            ("decision_id", &line.decision_id),
            ("face", &line.face),
        ] {
            if value.len() > MAX_NAME_BYTES {
                return Err(format!("`{name}` is longer than {MAX_NAME_BYTES} bytes"));
            }
        }
        let logged = Verdict::logged(&line.decision, &line.reason)?;
        if let Some(code) = &line.not_replayable {
            return NotReplayable::from_code(code)
                .map(Err)
                .ok_or_else(|| format!("`not_replayable`: unknown code `{}`", clip(code)));
        }
        let session_caller = match &*line.caller {
            "asserted" | "access_key" => false,
            "session" => true,
            "presented" => return Ok(Err(NotReplayable::UnverifiedCaller)),
            other => return Err(format!("`caller`: unknown caller kind `{}`", clip(other))),
        };
        let Some(entries) = &line.context else {
            return Ok(Err(NotReplayable::NoContext));
        };
        let context = check_context(entries, limits)?;
        let session = match (&line.session, session_caller) {
            (Some(s), true) => Some(session(s, &line.principal)?),
            (None, true) => return Err("a session caller's record has no `session`".to_owned()),
            (Some(_), false) => {
                return Err(format!(
                    "a `{}` caller's record has a `session`",
                    clip(&line.caller)
                ));
            }
            (None, false) => None,
        };
        Ok(Ok(Record {
            line,
            logged,
            at: UNIX_EPOCH + Duration::from_millis(line.ts_ms),
            context,
            session,
        }))
    }

    /// Decides the record against `snapshot`, as the service would have: the action
    /// against its catalog, the context screened by its rules, the principal resolved
    /// with the session's facts (its managed session policies looked up there), at the
    /// record's time.
    fn decide(&self, snapshot: &Snapshot) -> Result<Verdict, String> {
        let line = self.line;
        let action = Action::parse(&line.action)?;
        snapshot.check_action(&action, &line.action)?;
        let resource_arn = parse_resource(&line.resource)?;
        let context = CallerContext::screen_with(
            self.context.clone(),
            |k| snapshot.is_web_identity_key(k),
            |_| {},
        );
        let question = Question {
            action: &action,
            resource: &line.resource,
            resource_arn,
            context: CallerView::of(&context),
        };
        let session = self.session.as_ref().map(|s| s.for_snapshot(snapshot));
        let who = snapshot.resolve(&line.principal, session.as_ref(), self.at)?;
        let outcome = match who {
            Some(who) => snapshot.decide(&who, &question, self.at, false).0.outcome,
            None => crate::eval::Outcome::unknown_principal(),
        };
        Ok(Verdict::decided(outcome.decision, outcome.reason))
    }

    fn replay(self, tally: &mut Tally, n: u64, candidate: &Snapshot, against: &Against<'_>) {
        let (from, from_refusal) = match against {
            Against::Logged => (self.logged.clone(), None),
            Against::Baseline(baseline) => match self.decide(baseline) {
                Ok(v) => (v, None),
                Err(m) => (Verdict::refused(), Some(m)),
            },
        };
        let (to, to_refusal) = match self.decide(candidate) {
            Ok(v) => (v, None),
            Err(m) => (Verdict::refused(), Some(m)),
        };
        tally.replayed += 1;
        if self.line.face == "Check" {
            tally.check_on_logged_route += 1;
        }
        if from == to {
            tally.unchanged += 1;
            return;
        }
        tally.changed += 1;
        if from.decision != to.decision {
            tally.flipped += 1;
        }
        let key = GroupKey {
            principal: self.line.principal.to_string(),
            action: self.line.action.to_string(),
            from,
            to,
        };
        let group = tally.groups.entry(key).or_default();
        group.count += 1;
        if group.examples.len() < EXAMPLES {
            group.examples.push(Example {
                line: n,
                decision_id: self.line.decision_id.to_string(),
                resource: self.line.resource.to_string(),
                refusal: to_refusal.or(from_refusal),
            });
        }
    }
}

/// A record's context within the service's bounds, as a context.
fn check_context(
    entries: &[(Cow<'_, str>, LoggedValue<'_>)],
    limits: &Limits,
) -> Result<Context, String> {
    if entries.len() > limits.max_context_entries {
        return Err(format!(
            "`context` has {} keys, more than the limit of {}",
            entries.len(),
            limits.max_context_entries
        ));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "`context`: a key is empty or longer than {MAX_KEY_BYTES} bytes"
            ));
        }
        let value = match value {
            LoggedValue::One(v) => ContextValue::Single(v.to_string()),
            LoggedValue::Many(vs) => {
                if vs.len() > limits.max_context_values {
                    return Err(format!(
                        "`context`: key `{}` has {} values, more than the limit of {}",
                        clip(key),
                        vs.len(),
                        limits.max_context_values
                    ));
                }
                ContextValue::Multi(vs.clone())
            }
        };
        for v in value.values() {
            if v.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "`context`: a value of key `{}` is longer than {MAX_VALUE_BYTES} bytes",
                    clip(key)
                ));
            }
            total += v.len();
        }
        total += key.len();
        if total > RECORD_CONTEXT_BYTES {
            return Err(format!(
                "`context` holds more than {RECORD_CONTEXT_BYTES} bytes, more than a record keeps"
            ));
        }
        out.push((key.to_string(), value));
    }
    Context::from_entries(out)
        .map_err(|key| format!("`context`: key `{}` is given twice", clip(&key)))
}

/// A session caller's facts as a session, its policies still to be looked up in the
/// snapshot that decides ([`Session::for_snapshot`]).
fn session(s: &LoggedSession, principal: &str) -> Result<Session, String> {
    if s.tags.len() > MAX_SESSION_TAGS {
        return Err(format!(
            "`session.tags`: {} tags, more than the limit of {MAX_SESSION_TAGS}",
            s.tags.len()
        ));
    }
    if s.policy_arns.len() > MAX_SESSION_POLICY_ARNS {
        return Err(format!(
            "`session.policy_arns`: {} ARNs, more than the limit of {MAX_SESSION_POLICY_ARNS}",
            s.policy_arns.len()
        ));
    }
    let long = |v: &String| v.len() > MAX_NAME_BYTES;
    if s.tags.iter().any(|(k, v)| long(k) || long(v))
        || s.policy_arns.iter().any(long)
        || s.source_identity.as_ref().is_some_and(long)
    {
        return Err(format!(
            "`session`: a value is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    let ms = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    Ok(Session {
        id: "replay".to_owned(),
        arn: principal.to_owned(),
        // A placeholder set: `for_snapshot` builds the session's policies from its ARNs.
        policies: (!s.policy_arns.is_empty())
            .then(|| Arc::new(crate::compile::PolicySet::new(Vec::new()))),
        policy_arns: s.policy_arns.clone(),
        inline_policy: None,
        tags: s.tags.clone(),
        source_identity: s.source_identity.clone(),
        issued_at: ms(s.issued_at_ms),
        // The decision was made before it expired, or it would not have been made.
        expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
        mfa_at: s.mfa_at_ms.map(ms),
        web_identity: None,
    })
}

#[cfg(test)]
mod tests;
