//! The `warden` binary: a thin entry that parses arguments and runs a subcommand.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
