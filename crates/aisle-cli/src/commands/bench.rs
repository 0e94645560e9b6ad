pub fn run(_: Args) -> anyhow::Result<()> { Ok(()) }
#[derive(clap::Args, Debug)] pub struct Args {}
