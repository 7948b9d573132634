#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;

fn example_files() -> BTreeMap<String, String> {
    crate::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

fn publisher() -> Publisher {
    Publisher::new(Arc::new(Published::new()), Arc::new(Telemetry::new()))
}

fn fetched(revision: u64, files: BTreeMap<String, String>) -> Fetched {
    Fetched {
        revision,
        files: Ok(std::sync::Arc::new(crate::bundle::share(files))),
    }
}

/// Files as a source offered them, as owned texts.
fn owned(files: &crate::bundle::SharedFiles) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.clone(), t.to_string()))
        .collect()
}

#[tokio::test]
async fn the_publisher_publishes_a_bundle_under_the_revision_of_its_source() {
    let p = publisher();
    let files = example_files();
    assert_eq!(p.offer("test", fetched(7, files.clone())).await, Ok(7));
    let serving = p.published().current().unwrap();
    assert_eq!(serving.revision(), 7);
    assert_eq!(&**serving.digest(), crate::digest::of_files(&files));
    let status = p.published().status();
    assert_eq!(status.revision, Some(7));
    assert_eq!(
        status.digest.as_deref(),
        Some(&*crate::digest::of_files(&files))
    );
    assert_eq!((status.reloads_ok, status.reloads_failed), (1, 0));
}

#[tokio::test]
async fn a_revision_not_above_the_serving_one_is_refused_and_changes_nothing() {
    let p = publisher();
    p.offer("test", fetched(5, example_files())).await.unwrap();
    let before = p.published().current().unwrap();
    for revision in [5, 4, 0] {
        let mut files = example_files();
        files.remove("scps/ProtectProductionData.json");
        let e = p.offer("test", fetched(revision, files)).await.unwrap_err();
        assert_eq!(
            e,
            format!("revision {revision} is not above the serving revision 5")
        );
        assert!(Arc::ptr_eq(&before, &p.published().current().unwrap()));
        assert_eq!(p.published().revision(), 5);
    }
    let status = p.published().status();
    assert_eq!((status.reloads_ok, status.reloads_failed), (1, 3));
    assert_eq!(status.last_error.unwrap().revision, 0);
}

#[tokio::test]
async fn a_failed_load_keeps_the_serving_snapshot_and_says_why() {
    let p = publisher();
    p.offer("test", fetched(1, example_files())).await.unwrap();
    let before = p.published().current().unwrap();

    let mut broken = example_files();
    broken.insert(
        "accounts/333333333333/policies/ReportsReader.json".into(),
        "{\"Version\": ".into(),
    );
    let e = p.offer("test", fetched(2, broken)).await.unwrap_err();
    assert!(e.contains("ReportsReader.json"), "{e}");
    let unread = Fetched {
        revision: 3,
        files: Err("reading the bundle took too long".into()),
    };
    assert_eq!(
        p.offer("test", unread).await.unwrap_err(),
        "reading the bundle took too long"
    );

    assert!(Arc::ptr_eq(&before, &p.published().current().unwrap()));
    let status = p.published().status();
    assert_eq!(status.revision, Some(1));
    assert_eq!(status.reloads_failed, 2);
    let last = status.last_error.unwrap();
    assert_eq!(last.revision, 3);
    assert_eq!(last.message, "reading the bundle took too long");

    // A later good bundle serves and clears the error.
    assert_eq!(p.offer("test", fetched(4, example_files())).await, Ok(4));
    assert!(p.published().status().last_error.is_none());
}

#[tokio::test]
async fn a_memory_source_offers_its_files_under_growing_revisions() {
    let files = example_files();
    let mut source = MemorySource::new(files.clone());
    assert_eq!(source.watch(), "off");
    let (a, b) = (source.fetch().await, source.fetch().await);
    assert_eq!((a.revision, b.revision), (1, 2));
    assert_eq!(owned(&a.files.unwrap()), files);
    let p = publisher();
    assert_eq!(p.offer(&source.describe(), b).await, Ok(2));
}

#[tokio::test]
async fn a_read_that_blocks_is_given_up_and_blocks_no_other_read_twice() {
    let reading = Arc::new(AtomicBool::new(false));
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let hung = read_bounded(
        move || {
            let _ = blocked.recv();
            Ok(BTreeMap::new())
        },
        reading.clone(),
        Duration::from_millis(50),
    )
    .await;
    let e = hung.unwrap_err();
    assert!(
        e.starts_with("reading the bundle took longer than 50ms"),
        "{e}"
    );

    // While that read is still blocked, no second thread joins it.
    let second = read_bounded(
        || Ok(BTreeMap::new()),
        reading.clone(),
        Duration::from_secs(5),
    );
    assert!(second.await.unwrap_err().contains("still blocked"));

    // Once it ends, reading works again.
    release.send(()).unwrap();
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    while reading.load(std::sync::atomic::Ordering::Acquire) {
        assert!(std::time::Instant::now() < give_up, "the read never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let files = BTreeMap::from([("organization.json".to_owned(), "{}".to_owned())]);
    let again = files.clone();
    let read = read_bounded(move || Ok(again), reading, Duration::from_secs(5));
    assert_eq!(read.await.unwrap(), files);
}

#[test]
fn a_directory_source_refuses_a_path_that_is_no_directory() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let e = DirectorySource::open(missing.clone(), None).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!("bundle directory `{}` does not exist", missing.display())
    );
    let file = root.path().join("file");
    std::fs::write(&file, "").unwrap();
    let e = DirectorySource::open(file.clone(), None).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "`{}` is not a directory; a bundle is a directory",
            file.display()
        )
    );
}

#[tokio::test]
async fn a_directory_source_counts_its_reads_as_revisions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    let mut source = DirectorySource::open(dir.clone(), None).unwrap();
    assert_eq!(source.describe(), format!("directory {}", dir.display()));
    let first = source.fetch().await;
    let second = source.fetch().await;
    assert_eq!((first.revision, second.revision), (1, 2));
    assert_eq!(owned(&first.files.unwrap()), example_files());
}

/// A watched source on `dir` whose `n`th read (from 1) gives `files(n)` and, when
/// `during(n)`, is changed under (the watch counts a change while it runs); with the
/// reads counted.
fn scripted_source(
    dir: &Path,
    files: impl Fn(u32) -> BTreeMap<String, String> + Send + Sync + 'static,
    during: impl Fn(u32) -> bool + Send + Sync + 'static,
) -> (DirectorySource, Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::atomic::Ordering;
    let config = WatchConfig {
        debounce: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    let source = DirectorySource::open(dir.to_path_buf(), Some(config)).unwrap();
    let counter = source.watch.as_ref().unwrap().changes.clone();
    let reads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = reads.clone();
    let source = source.with_reader(Arc::new(move |_: &Path| {
        let n = counted.fetch_add(1, Ordering::AcqRel) + 1;
        if during(n) {
            counter.fetch_add(1, Ordering::AcqRel);
        }
        Ok(files(n))
    }));
    (source, reads)
}

/// The example's files with a marker file that says `n`.
fn version(n: u32) -> BTreeMap<String, String> {
    let mut files = example_files();
    files.insert("marker.txt".into(), n.to_string());
    files
}

fn reads(counter: &std::sync::atomic::AtomicU32) -> u32 {
    counter.load(std::sync::atomic::Ordering::Acquire)
}

#[tokio::test]
async fn a_read_the_directory_changed_under_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, counter) = scripted_source(dir.path(), version, |n| n == 1);
    let fetched = source.fetch().await;
    assert_eq!(owned(&fetched.files.unwrap()), version(2));
    assert_eq!(reads(&counter), 2);
    assert_eq!(fetched.revision, 1, "one revision for the whole fetch");
}

#[tokio::test]
async fn a_directory_that_changes_under_every_read_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let (mut source, counter) = scripted_source(dir.path(), |_| example_files(), |_| true);
    let e = source.fetch().await.files.unwrap_err();
    assert!(
        e.starts_with("the bundle kept changing while it was read"),
        "{e}"
    );
    assert_eq!(reads(&counter), UNSTEADY_READS);
}

/// A source whose last change ended by the maximum delay, not by quiet.
fn forced(mut source: DirectorySource) -> DirectorySource {
    source.watch.as_mut().unwrap().forced = true;
    source
}

#[tokio::test]
async fn after_the_maximum_delay_a_read_serves_only_when_the_next_finds_the_same_files() {
    let dir = tempfile::tempdir().unwrap();

    // Steady at once (a file touched without change): the second read confirms the first.
    let (source, counter) = scripted_source(dir.path(), |_| version(0), |_| false);
    let fetched = forced(source).fetch().await;
    assert_eq!(
        (owned(&fetched.files.unwrap()), reads(&counter)),
        (version(0), 2)
    );

    // A copy still going on, then done: the first two reads differ, the third confirms.
    let (source, counter) = scripted_source(dir.path(), |n| version(n.min(2)), |_| false);
    let fetched = forced(source).fetch().await;
    assert_eq!(
        (owned(&fetched.files.unwrap()), reads(&counter)),
        (version(2), 3)
    );

    // Never steady: the load fails rather than serve a bundle half-copied, names what
    // kept changing, and is tried again after the next quiet without a change to wait for
    // (its last read may have been the whole bundle).
    let (source, counter) = scripted_source(dir.path(), version, |_| false);
    let mut source = forced(source);
    let e = source.fetch().await.files.unwrap_err();
    assert!(e.starts_with("the bundle kept changing"), "{e}");
    assert!(e.contains("files that kept changing: marker.txt)"), "{e}");
    assert_eq!(reads(&counter), UNSTEADY_READS);
    let again = tokio::time::timeout(Duration::from_secs(20), source.changed()).await;
    assert_eq!(again.unwrap(), Change::Bundle);
    assert!(
        source.watch.as_ref().unwrap().forced,
        "the next read is confirmed too"
    );

    // Without the maximum delay, one read that nothing changed under serves.
    let (mut source, counter) = scripted_source(dir.path(), version, |_| false);
    assert_eq!(owned(&source.fetch().await.files.unwrap()), version(1));
    assert_eq!(reads(&counter), 1);
}

#[tokio::test]
async fn a_failed_load_with_a_finding_per_file_is_reported_in_brief() {
    let p = publisher();
    let mut files = example_files();
    for n in 0..500 {
        files.insert(
            format!("accounts/333333333333/policies/Broken{n}.json"),
            "{".into(),
        );
    }
    p.offer("test", fetched(1, files)).await.unwrap_err();
    let message = p.published().status().last_error.unwrap().message;
    assert!(message.lines().count() <= REPORTED_LINES + 1, "{message}");
    assert!(message.ends_with("more lines"), "{message}");
}

#[tokio::test]
async fn a_watch_that_misses_changes_says_it_is_lost_then_watches_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = WatchConfig {
        debounce: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    };
    let mut source = DirectorySource::open(dir.path().to_path_buf(), Some(config)).unwrap();
    assert_eq!(source.watch(), "watching");
    // What the watcher's thread reports when the system's limit of watches is reached.
    let why = "the system's limit of inotify watches is reached (fs.inotify.max_user_watches)";
    *source.watch.as_ref().unwrap().trouble.lock().unwrap() = Some(why.to_owned());
    let bound = Duration::from_secs(20);
    let change = tokio::time::timeout(bound, source.changed()).await.unwrap();
    assert_eq!(
        (change, source.watch()),
        (Change::Watch, format!("lost: {why}"))
    );
    // The next check watches again, and reloads what may have been missed.
    let change = tokio::time::timeout(bound, source.changed()).await.unwrap();
    assert_eq!(
        (change, source.watch()),
        (Change::Bundle, "watching".to_owned())
    );
}

#[test]
fn a_load_runs_at_a_lower_priority_than_the_requests_and_leaves_them_alone() {
    use rustix::process::getpriority_process;
    let requests = getpriority_process(None).unwrap();
    let load = std::thread::spawn(|| {
        lower_priority(LOAD_NICE);
        getpriority_process(None).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(load, (requests + LOAD_NICE).min(19));
    assert_eq!(getpriority_process(None).unwrap(), requests);
}
