//! `runnerkit`: the runner built on `runnerkit-cli`'s library.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runnerkit_cli::main().await
}
