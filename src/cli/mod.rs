//! The command line: clap definitions (`args`), their resolution into library configs
//! (`resolve`), and one function per command. Only the binary declares this module, so the
//! library never sees a flag.

pub mod args;
pub mod bench;
pub mod disturb;
pub mod energy;
pub mod report;
pub mod resolve;
pub mod sweep;
pub mod train;

pub use args::{Cli, Command};

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Disturb(a) => disturb::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Runs(a) => sweep::runs(a),
        Command::Report(a) => report::run(a),
        Command::Energy(a) => energy::run(a),
        Command::Tradeoff(a) => energy::tradeoff(a),
    }
}
