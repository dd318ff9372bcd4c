//! The `runnerkit` command.

fn main() -> anyhow::Result<()> {
    Ok(())
}
