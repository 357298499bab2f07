//! The `spikeconv` command line.

fn main() -> anyhow::Result<()> {
    Ok(())
}
