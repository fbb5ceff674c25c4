//! The `rram` binary: parse the command line, run the command, and turn any error into one
//! line on stderr with exit code 2.

mod cli;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's message spans several lines (usage, hints): keep the first.
            let text = e.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad arguments");
            eprintln!("{}", first.trim());
            std::process::exit(2);
        }
    };
    if let Err(e) = cli::run(cli) {
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(2);
    }
}
