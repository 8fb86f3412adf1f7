use crate::cli::RenderArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use std::path::Path;

/// The config is loaded (so it is validated, and every `${VAR}` must be set — placeholders
/// will do: values are never rendered) and its text goes into the ConfigMap as written.
pub fn run(path: &Path, args: RenderArgs) -> Result<()> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read config {}: {e}", path.display())))?;
    let cfg = Config::from_str(&raw, path)?;
    print!("{}", crate::k8s::render(&cfg, &raw, &args)?);
    Ok(())
}
