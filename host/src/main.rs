//! `edgescore`: score events with the scoring component from the command line.

mod cli;

// The service allocates per event (ids, feature rows) on many threads; mimalloc's thread-local
// free lists measured cheaper than glibc's malloc here (see the README's HTTP benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() {
    // Like other Unix filters: `edgescore inspect | head` ends quietly when head stops reading,
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        // One line, as a user reads it; the chain of causes joined.
        eprintln!("edgescore: {e:#}");
        std::process::exit(1);
    }
}
