use super::{is_text, print_json};
use crate::backup::open_regions;
use crate::cli::{CatalogCmd, Output};
use crate::config::Config;
use crate::error::Result;

pub async fn run(cfg: &Config, cmd: CatalogCmd, out: Output) -> Result<()> {
    match cmd {
        CatalogCmd::Migrate => {
            let r = crate::catalog::migrate(cfg).await?;
            if !is_text(out) {
                return print_json(&r);
            }
            if r.applied.is_empty() {
                println!(
                    "catalog is current (schema version {:?})",
                    r.current_version.unwrap_or(0)
                );
            } else {
                for m in &r.applied {
                    println!("applied {m}");
                }
            }
        }
        CatalogCmd::Sync => {
            let regions = open_regions(cfg)?;
            let r = crate::catalog::sync(cfg, &regions).await?;
            if !is_text(out) {
                return print_json(&r);
            }
            println!(
                "catalog synced: {} job(s), {} backup(s), {} copies, {} verification record(s)",
                r.jobs, r.backups, r.copies, r.verifications
            );
        }
    }
    Ok(())
}
