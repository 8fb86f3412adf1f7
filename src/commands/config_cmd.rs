use super::print_json;
use crate::cli::{ConfigCmd, Output};
use crate::config::{self, Config};
use crate::error::Result;
use std::path::Path;

pub fn run(path: &Path, cmd: ConfigCmd, out: Output) -> Result<()> {
    match cmd {
        ConfigCmd::Validate => {
            let cfg = Config::load(path)?;
            if out == Output::Json {
                print_json(&serde_json::json!({
                    "valid": true,
                    "file": cfg.path.display().to_string(),
                    "regions": cfg.regions.iter().map(|r| r.name.0.clone()).collect::<Vec<_>>(),
                    "min_copies": cfg.min_copies,
                    "jobs": cfg.jobs.iter().map(|j| j.name.0.clone()).collect::<Vec<_>>(),
                }))
            } else {
                println!(
                    "{}: valid ({} regions, min_copies {}, {} jobs)",
                    cfg.path.display(),
                    cfg.regions.len(),
                    cfg.min_copies,
                    cfg.jobs.len()
                );
                Ok(())
            }
        }
        ConfigCmd::Schema => print_json(&config::schema()),
    }
}
