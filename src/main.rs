//! The `ecny` binary: argument parsing and wiring; the work lives in the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
