//! The `rram` binary: parse the command line, run the command, and turn any error into one
//! line on stderr with exit code 2.

mod cli;

use clap::Parser;

// Every training step frees and reallocates the same large buffers (activations, gradients,
// column matrices). glibc hands big blocks back to the OS and faults them in again, zeroed, at
// the next step: 17% of a ResNet-20 step on one machine (docs/results.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never purge freed pages: keep them mapped for the next step's buffers.
    // SAFETY: set once before any other thread exists; mimalloc reads the option at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's message spans several lines (usage, hints): keep its first paragraph, on
            // one line; a missing argument is named on the line after "not provided:".
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            if first.is_empty() {
                eprintln!("error: bad arguments");
            } else {
                eprintln!("{}", first.join(" "));
            }
            std::process::exit(2);
        }
    };
    if let Err(e) = cli::run(cli) {
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(2);
    }
}
