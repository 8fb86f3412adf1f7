//! Progress bars on a TTY. A backup draws one line for the source (raw bytes, rate) and one
//! per region (stored bytes written); a restore or verify one per copy it reads (stored bytes
//! of the manifest's size, with the time left), whether checked whole or streamed into the
//! target. Off a TTY nothing is drawn; structured logs carry the figures instead.
//!
//! Logs share the terminal with the board: while one is drawn, a log line is written with the
//! board cleared and drawn again below it (`AboveBars`). Written straight to stderr it would
//! land inside the board, glued to a frame of bars left on the screen — the warning that a
//! region dropped out of a backup, say.

use crate::store::Region;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Mutex, PoisonError};

/// The board drawn now, if any, for the log writer.
static DRAWN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// The bars of artifacts streamed side by side, drawn together while this lives.
pub struct Board {
    multi: MultiProgress,
    /// Every reading bar, held until the board ends: a bar dropped while drawn (a failed
    /// read's, or one whose read was cancelled when a sibling failed) would stay on the
    /// screen for good, as indicatif keeps a dropped bar's last lines.
    bars: Mutex<Vec<ProgressBar>>,
}

impl Board {
    /// A board on stderr; `None` off a TTY (or with `--no-progress`).
    pub fn start(enabled: bool) -> Option<Board> {
        enabled.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            *DRAWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(multi.clone());
            Board {
                multi,
                bars: Mutex::new(Vec::new()),
            }
        })
    }

    /// A bar for reading `total` stored bytes (one copy of an artifact), e.g. `db ← garage`.
    pub fn reading(board: Option<&Board>, label: String, total: u64) -> Option<ProgressBar> {
        let board = board?;
        let style = ProgressStyle::with_template(
            "{prefix:>22} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = board.add(ProgressBar::new(total));
        bar.set_style(style);
        bar.set_prefix(label);
        let mut held = board.bars.lock().unwrap_or_else(PoisonError::into_inner);
        held.push(bar.clone());
        Some(bar)
    }

    /// The end of a bar's read: gone when it went well, marked "failed" until the board ends
    /// when it did not.
    pub fn settle(bar: Option<ProgressBar>, ok: bool) {
        match bar {
            Some(bar) if ok => bar.finish_and_clear(),
            Some(bar) => bar.abandon_with_message("failed"),
            None => {}
        }
    }
}

impl std::ops::Deref for Board {
    type Target = MultiProgress;
    fn deref(&self) -> &MultiProgress {
        &self.multi
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        *DRAWN.lock().unwrap_or_else(PoisonError::into_inner) = None;
        // The bars go with the board; what happened is in the logs and the summary.
        let bars = self.bars.get_mut().unwrap_or_else(PoisonError::into_inner);
        for bar in bars.drain(..) {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// A log writer that writes above the board while one is drawn.
pub struct AboveBars<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for AboveBars<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let drawn = DRAWN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match drawn {
            Some(board) => board.suspend(|| self.0.write(buf)),
            None => self.0.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A backup's bars for one artifact: its source, and each region it is written to.
pub struct Bars {
    source: Option<ProgressBar>,
    pub regions: Vec<Option<ProgressBar>>,
}

impl Bars {
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
