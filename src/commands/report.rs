//! `drctl report`: the console page for CronJob users — a file (`--html`), the repository
//! (`--publish`, one copy per region as `console/index.html`), or its data as JSON.

use super::print_json;
use crate::backup::open_regions;
use crate::cli::{Output, ReportArgs};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where `--publish` puts the page in every region.
pub const PUBLISHED: &str = "console/index.html";

pub async fn run(cfg: &Config, args: ReportArgs, out: Output) -> Result<()> {
    let regions = open_regions(cfg)?;
    let page = crate::console::gather(cfg, &regions, chrono::Utc::now()).await?;
    let html = crate::console::html::render(&page, None);
    match args.html.as_deref() {
        Some(p) if p.as_os_str() == "-" => super::write_stdout(html.as_bytes())?,
        Some(p) => write_file(p, &html)?,
        None if !args.publish => print_json(&page)?,
        None => {}
    }
    if args.publish {
        let mut failed = Vec::new();
        for r in &regions {
            if let Err(e) = r.op.write(PUBLISHED, html.clone().into_bytes()).await {
                tracing::warn!(region = %r.name, error = %e, "cannot publish the page");
                failed.push(r.name.clone());
            }
        }
        if !failed.is_empty() {
            return Err(Error::failed(format!(
                "the page could not be published to region(s) {}",
                failed.join(", ")
            ))
            .hint("check the region's credentials and that it is writable (the warning above says why)"));
        }
        tracing::info!(path = PUBLISHED, regions = regions.len(), "page published");
    }
    let _ = out;
    Ok(())
}

/// Write through a temporary file and rename, so a web server never serves half a page.
fn write_file(path: &std::path::Path, html: &str) -> Result<()> {
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::usage(format!("cannot write {}: {e}", path.display()))
                .hint("choose a writable path for --html")
        })
}
