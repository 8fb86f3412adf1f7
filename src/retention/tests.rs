//! The policy against an independent model, over thousands of random histories.

use super::policy::*;
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const REGIONS: [&str; 3] = ["a", "b", "c"];

fn ctx(min_copies: usize, lease_floor: Option<DateTime<Utc>>) -> Context {
    Context {
        regions: REGIONS.iter().map(|s| s.to_string()).collect(),
        min_copies,
        lease_floor,
    }
}

/// Random histories: up to 80 backups, gaps from a minute to two months, each held by a
/// non-empty subset of regions, some verified.
fn histories() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec((60i64..5_400_000, 1u8..8, any::<bool>()), 0..80).prop_map(|steps| {
        let mut t = Utc.with_ymd_and_hms(2024, 12, 28, 23, 30, 0).unwrap();
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (gap, mask, verified))| {
                // Mostly small gaps, so several backups share an hour or a day.
                t += chrono::Duration::seconds(if i % 3 == 0 { gap } else { gap % 7200 });
                Candidate {
                    id: format!("{}-{i:06x}", t.format("%Y%m%dT%H%M%SZ")),
                    consistent_at: t,
                    regions: REGIONS
                        .iter()
                        .enumerate()
                        .filter(|(r, _)| mask & (1 << r) != 0)
                        .map(|(_, s)| s.to_string())
                        .collect(),
                    verified,
                }
            })
            .collect()
    })
}

fn policies() -> impl Strategy<Value = Policy> {
    (
        prop::array::uniform6(0u32..6),
        prop::option::of(0u64..2_000_000),
    )
        .prop_map(|(n, within)| Policy {
            keep_last: n[0],
            keep_hourly: n[1],
            keep_daily: n[2],
            keep_weekly: n[3],
            keep_monthly: n[4],
            keep_yearly: n[5],
            keep_within: within.map(Duration::from_secs),
        })
}

/// The model of one `keep_<period> n` rule: group by period, the newest backup of each of the
/// n newest periods; plus the oldest backup when there are fewer than n periods.
fn model_period(h: &[Candidate], period: Period, n: u32) -> BTreeSet<String> {
    let mut newest_per: BTreeMap<String, &Candidate> = BTreeMap::new();
    for c in h {
        let e = newest_per
            .entry(period.bucket(c.consistent_at))
            .or_insert(c);
        if (c.consistent_at, &c.id) > (e.consistent_at, &e.id) {
            *e = c;
        }
    }
    let mut per: Vec<&Candidate> = newest_per.into_values().collect();
    per.sort_by(|a, b| (b.consistent_at, &b.id).cmp(&(a.consistent_at, &a.id)));
    let mut out: BTreeSet<String> = per.iter().take(n as usize).map(|c| c.id.clone()).collect();
    if (per.len() as u32) < n {
        if let Some(oldest) = h.iter().min_by_key(|c| (c.consistent_at, &c.id)) {
            out.insert(oldest.id.clone());
        }
    }
    out
}

fn newest_by(h: &[Candidate], f: impl Fn(&Candidate) -> bool) -> Option<&Candidate> {
    h.iter()
        .filter(|c| f(c))
        .max_by_key(|c| (c.consistent_at, &c.id))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn kept_set_satisfies_every_rule(
        h in histories(),
        p in policies(),
        min_copies in 1usize..4,
        floor_at in prop::option::of(0usize..80),
    ) {
        let floor = floor_at.and_then(|i| h.get(i)).map(|c| c.consistent_at);
        let d = plan(Some(&p), &h, &ctx(min_copies, floor));
        prop_assert_eq!(d.len(), h.len());
        let kept: BTreeSet<String> = d.iter().filter(|d| d.keep()).map(|d| d.id.clone()).collect();

        // keep_last
        let mut by_time: Vec<&Candidate> = h.iter().collect();
        by_time.sort_by(|a, b| (b.consistent_at, &b.id).cmp(&(a.consistent_at, &a.id)));
        for c in by_time.iter().take(p.keep_last as usize) {
            prop_assert!(kept.contains(&c.id), "keep_last {} dropped {}", p.keep_last, c.id);
        }
        // keep_<period>
        for period in Period::ALL {
            for id in model_period(&h, period, period.count(&p)) {
                prop_assert!(kept.contains(&id), "{:?} {} dropped {}", period, period.count(&p), id);
            }
        }
        // keep_within, relative to the newest backup
        if let (Some(w), Some(newest)) = (p.keep_within, by_time.first()) {
            for c in &h {
                if newest.consistent_at - c.consistent_at < chrono::Duration::from_std(w).unwrap() {
                    prop_assert!(kept.contains(&c.id), "within {:?} dropped {}", w, c.id);
                }
            }
        }
        // Safety rules
        if let Some(c) = newest_by(&h, |_| true) {
            prop_assert!(kept.contains(&c.id), "newest complete dropped");
        }
        if let Some(c) = newest_by(&h, |c| c.verified) {
            prop_assert!(kept.contains(&c.id), "newest verified dropped");
        }
        if let Some(c) = newest_by(&h, |c| c.regions.len() >= min_copies) {
            prop_assert!(kept.contains(&c.id), "newest with min_copies dropped");
        }
        if let Some(f) = floor {
            for c in h.iter().filter(|c| c.consistent_at >= f) {
                prop_assert!(kept.contains(&c.id), "backup after the lease floor dropped");
            }
        }
        // Coverage: for each kept backup missing from a region, the region still holds a kept
        // copy older than it, unless the region never had one.
        for k in h.iter().filter(|c| kept.contains(&c.id)) {
            for r in REGIONS {
                if k.regions.contains(r) { continue; }
                let older: Vec<&Candidate> = h.iter()
                    .filter(|c| (c.consistent_at, &c.id) < (k.consistent_at, &k.id) && c.regions.contains(r))
                    .collect();
                if !older.is_empty() {
                    prop_assert!(older.iter().any(|c| kept.contains(&c.id)),
                        "region {} lost every copy older than kept {}", r, k.id);
                }
            }
        }
        // Nothing is kept without a reason, and decisions do not depend on input order.
        let mut shuffled = h.clone();
        shuffled.reverse();
        prop_assert_eq!(plan(Some(&p), &shuffled, &ctx(min_copies, floor)), d);
    }

    #[test]
    fn no_policy_keeps_everything(h in histories()) {
        let d = plan(None, &h, &ctx(2, None));
        prop_assert!(d.iter().all(|d| d.keep()));
    }
}

#[test]
fn a_week_of_hourly_backups_under_a_typical_policy() {
    let start = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
    let all: BTreeSet<String> = REGIONS[..2].iter().map(|s| s.to_string()).collect();
    let h: Vec<Candidate> = (0..24 * 7)
        .map(|i| {
            let t = start + chrono::Duration::hours(i);
            Candidate {
                id: format!("{}-000000", t.format("%Y%m%dT%H%M%SZ")),
                consistent_at: t,
                regions: all.clone(),
                verified: false,
            }
        })
        .collect();
    let p = Policy {
        keep_last: 3,
        keep_daily: 3,
        ..Default::default()
    };
    let c = Context {
        regions: REGIONS[..2].iter().map(|s| s.to_string()).collect(),
        min_copies: 2,
        lease_floor: None,
    };
    let d = plan(Some(&p), &h, &c);
    let kept: Vec<(&str, String)> = d
        .iter()
        .filter(|d| d.keep())
        .map(|d| (&d.id[..16], d.reasons.join(", ")))
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                "20261122T230000Z",
                "last 1, daily 2026-11-22, newest complete, newest in 2 regions".into()
            ),
            ("20261122T220000Z", "last 2".into()),
            ("20261122T210000Z", "last 3".into()),
            ("20261121T230000Z", "daily 2026-11-21".into()),
            ("20261120T230000Z", "daily 2026-11-20".into()),
        ]
    );
}
