//! Progress bars on a TTY: one line for the source (raw bytes, rate), one per region (stored
//! bytes written). Off a TTY nothing is drawn; structured logs carry the figures instead.

use crate::store::Region;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    source: Option<ProgressBar>,
    pub regions: Vec<Option<ProgressBar>>,
}

impl Bars {
    /// Where the bars of artifacts streamed side by side are drawn together; `None` off a TTY.
    pub fn board(enabled: bool) -> Option<MultiProgress> {
        enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
    }

    pub fn new(
        board: Option<&MultiProgress>,
        job: &str,
        artifact: &str,
        regions: &[Region],
    ) -> Bars {
        let Some(multi) = board else {
            return Bars {
                source: None,
                regions: regions.iter().map(|_| None).collect(),
            };
        };
        let style = ProgressStyle::with_template(
            "{prefix:>22} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = |prefix: String| {
            let b = multi.add(ProgressBar::no_length());
            b.set_style(style.clone());
            b.set_prefix(prefix);
            b
        };
        let source = bar(format!("{job}/{artifact} read"));
        let regions = regions
            .iter()
            .map(|r| Some(bar(format!("→ {}", r.name))))
            .collect();
        Bars {
            source: Some(source),
            regions,
        }
    }

    pub fn source(&self, raw_bytes: u64) {
        if let Some(b) = &self.source {
            b.set_position(raw_bytes);
        }
    }

    pub fn finish(&self) {
        for b in self.regions.iter().flatten().chain(self.source.iter()) {
            b.finish_and_clear();
        }
    }
}
