//! Where a bundle load's CPU goes, phase by phase, and what one changed document costs.
//!
//! ```text
//! cargo bench --bench load -- [--statements 100000] [--dir DIR] [--rounds 3]
//! ```
//!
//! Phases of a whole load (the best of `--rounds`): reading the directory, JSON parsing
//! alone, `bundle::load_files` (parse and validate every document), `Snapshot::compile`,
//! `digest::of_files`, cloning the file map (what a source hands the publisher), and the
//! etcd source's local cache write. Then a write of one policy document, loaded by a
//! fresh `snapshot::Loader` (the whole bundle) and by one that loaded the bundle before
//! (incremental).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use warden::snapshot::{Loader, Snapshot};

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The best of `rounds` runs of `f`, and its last result.
fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut fastest = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let out = f();
        fastest = fastest.min(start.elapsed());
        last = Some(out);
    }
    (fastest, last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

/// The policy document a write rewrites (as `benches/fleet.rs` writes it).
fn written(i: usize) -> (String, String) {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Write{i}","Effect":"Allow","Action":"orders:GetOrder","Resource":"*"}}]}}"#
    );
    (
        "accounts/333333333333/policies/FleetBench.json".to_owned(),
        text,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = flag(&args, "--rounds").map_or(3, |s| s.parse().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let dir = match flag(&args, "--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            let n = flag(&args, "--statements").unwrap_or_else(|| "100000".to_owned());
            let out = scratch.path().join("synth");
            let status = Command::new(WARDEN)
                .args(["synth", "--statements", &n, "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            out
        }
    };
    let (read, mut files) = best(rounds, || warden::bundle::read_dir(&dir).unwrap());
    // `--incremental N`: only the incremental loads, N of them (to profile them).
    let only = flag(&args, "--incremental").map(|n| n.parse::<usize>().unwrap());
    if let Some(n) = only {
        // As the etcd source hands them: shared texts, a write a new allocation.
        let mut shared = warden::bundle::share(files);
        let mut loader = Loader::default();
        loader.load(&shared, 1).unwrap();
        let start = Instant::now();
        for i in 0..n {
            let (path, text) = written(i);
            shared.insert(path, text.into());
            loader.load(&shared, 2 + i as u64).unwrap();
        }
        println!(
            "Loader::load, one document      {}",
            ms(start.elapsed() / n.max(1) as u32)
        );
        return;
    }
    let bytes: usize = files.values().map(String::len).sum();
    println!(
        "bundle: {} files, {:.1} MB of text; best of {rounds}",
        files.len(),
        bytes as f64 / 1e6
    );
    println!("read the directory              {}", ms(read));
    let (parse, _) = best(rounds, || {
        files
            .values()
            .filter(|t| warden::json::parse(t.trim_start_matches('\u{feff}')).is_ok())
            .count()
    });
    println!("JSON parse only (every file)    {}", ms(parse));
    let (load, bundle) = best(rounds, || warden::bundle::load_files(&files).unwrap());
    println!("bundle::load_files (parse+check){}", ms(load));
    let (compile, snapshot) = best(rounds, || Snapshot::compile(&bundle, 1));
    println!("Snapshot::compile               {}", ms(compile));
    let (digest, _) = best(rounds, || warden::digest::of_files(&files));
    println!("digest::of_files                {}", ms(digest));
    let (clone, _) = best(rounds, || files.clone());
    println!("clone the file map              {}", ms(clone));
    let mut shared = warden::bundle::share(files.clone());
    let (clone, _) = best(rounds, || shared.clone());
    println!("clone the map of shared texts   {}", ms(clone));
    let cache = warden::source::etcd::Cache::new(scratch.path().join("cache"));
    let (write, _) = best(rounds, || cache.write(1, &files).unwrap());
    println!("etcd cache write (whole bundle) {}", ms(write));
    let (whole, _) = best(rounds, || Snapshot::load_files(&files, 1).unwrap());
    println!("Snapshot::load_files (all)      {}", ms(whole));
    println!("statements: {}", snapshot.statement_count());

    // One policy document written, as the fleet bench writes it, the texts shared as the
    // etcd source shares them (an unchanged text is the same allocation).
    let mut loader = Loader::default();
    let mut revision = 1;
    let (first, _) = best(1, || loader.load(&shared, revision).unwrap());
    println!("Loader::load, first             {}", ms(first));
    let mut i = 0;
    let (incremental, (loaded, reused)) = best(rounds.max(5), || {
        i += 1;
        revision += 1;
        let (path, text) = written(i);
        shared.insert(path, text.into());
        loader.load_counted(&shared, revision)
    });
    loaded.unwrap();
    println!("Loader::load, one document      {}", ms(incremental));
    println!("  reused {reused:?}");
    // The same write with every text a new allocation (the directory source reads them
    // all again): compared byte for byte.
    let mut loader = Loader::default();
    loader.load(&files, revision).unwrap();
    let (owned, _) = best(rounds.max(5), || {
        i += 1;
        revision += 1;
        let (path, text) = written(i);
        files.insert(path, text);
        loader.load(&files, revision).unwrap()
    });
    println!("Loader::load, owned texts       {}", ms(owned));
}
