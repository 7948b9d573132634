//! The `warden` binary: a thin entry that parses arguments and runs a subcommand.

mod cli;

/// mimalloc rather than glibc's malloc: a decision allocates a few dozen small strings and
/// buffers (h2's, tonic's, the request's), and glibc's malloc and free cost a Check a
/// quarter of its instructions (BENCHMARKS.md, issue 14).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
