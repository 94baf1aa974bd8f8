//! The project overview's charts, drawn on the server as SVG: runs per
//! minute by outcome (stacked bars) and p50/p95 duration (two lines), over
//! the last hour or day.
//!
//! Why server-side SVG: the console runs no script at all (its CSP allows
//! none), so a chart must arrive drawn. The geometry is computed here, in
//! plain numbers the template places; every label is text askama escapes.
//! Hover titles (`<title>`) give the exact numbers without script.

use crate::store::runs::{RunOutcome, RunPoint};

/// Drawing area of each chart, in SVG user units.
pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 180.0;
/// Room on the left for the y-axis labels.
pub const LEFT: f64 = 56.0;

/// Which span the charts cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
}

impl Window {
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text.unwrap_or("hour") {
            "hour" | "" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// Milliseconds covered.
    pub fn span_ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// Milliseconds per bar: a minute over an hour, 15 minutes over a day
    /// (96 bars; per-minute bars would be too thin to read).
    pub fn bucket_ms(self) -> i64 {
        match self {
            Self::Hour => 60_000,
            Self::Day => 900_000,
        }
    }

    fn buckets(self) -> usize {
        (self.span_ms() / self.bucket_ms()) as usize
    }
}

/// One bar segment (an outcome in one time bucket).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// CSS class: the outcome.
    pub class: &'static str,
    /// Hover text: the bucket's time and count.
    pub title: String,
}

/// A y-axis gridline and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub y: f64,
    pub label: String,
}

/// A time label under the x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeLabel {
    pub x: f64,
    /// `start`, `middle` or `end`: the edge labels stay inside the chart.
    pub anchor: &'static str,
    pub label: String,
}

/// Totals over the whole window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub unfinished: u64,
    /// Of finished runs; `None` when none finished.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// Everything the overview template draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Charts {
    pub bars: Vec<Bar>,
    pub rate_ticks: Vec<Tick>,
    /// `x,y` pairs for `<polyline points>`; a bucket without finished runs
    /// has no point, so each line may be several pieces.
    pub p50_lines: Vec<String>,
    pub p95_lines: Vec<String>,
    pub duration_ticks: Vec<Tick>,
    pub times: Vec<TimeLabel>,
    pub totals: Totals,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

fn number(v: f64) -> String {
    if v >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn duration_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", number(ms / 1000.0))
    } else {
        format!("{} ms", number(ms))
    }
}

/// Gridlines from 0 to `top` at round steps: fifths of a 1 or 5 top,
/// quarters of a 2 (so labels are 0, 1, 2 … or 0, 0.5, 1 …).
fn ticks(top: f64, label: impl Fn(f64) -> String) -> Vec<Tick> {
    let mantissa = top / 10f64.powf(top.log10().floor());
    let intervals = if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 };
    (0..=intervals)
        .map(|i| {
            let share = f64::from(i) / f64::from(intervals);
            Tick {
                y: HEIGHT - HEIGHT * share,
                label: label(top * share),
            }
        })
        .collect()
}

/// `HH:MM` (UTC) of a Unix-millisecond time.
fn clock(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000);
    format!(
        "{:02}:{:02}",
        minutes.div_euclid(60).rem_euclid(24),
        minutes.rem_euclid(60)
    )
}

/// Draws `points` (any order) for the window ending at `now_ms`.
pub fn draw(points: &[RunPoint], window: Window, now_ms: i64) -> Charts {
    let buckets = window.buckets();
    let bucket_ms = window.bucket_ms();
    // The last bucket ends at the next whole bucket after now, so bars do
    // not shift within a minute as the page reloads.
    let end = (now_ms.div_euclid(bucket_ms) + 1) * bucket_ms;
    let start = end - bucket_ms * buckets as i64;
    let mut counts = vec![[0u64; 4]; buckets];
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); buckets];
    let mut totals = Totals::default();
    let mut finished = Vec::new();
    for p in points {
        if p.created_at < start || p.created_at >= end {
            continue;
        }
        let b = ((p.created_at - start) / bucket_ms) as usize;
        let slot = match p.status {
            RunOutcome::Succeeded => 0,
            RunOutcome::Failed => 1,
            RunOutcome::Cancelled => 2,
            RunOutcome::Unfinished => 3,
        };
        counts[b][slot] += 1;
        match p.status {
            RunOutcome::Succeeded => totals.succeeded += 1,
            RunOutcome::Failed => totals.failed += 1,
            RunOutcome::Cancelled => totals.cancelled += 1,
            RunOutcome::Unfinished => totals.unfinished += 1,
        }
        if p.status != RunOutcome::Unfinished {
            durations[b].push(p.duration_ms);
            finished.push(p.duration_ms);
        }
    }
    finished.sort_unstable();
    totals.p50_ms = percentile(&finished, 50.0);
    totals.p95_ms = percentile(&finished, 95.0);

    // Runs per minute: a bucket's count over its minutes.
    let per_minute = bucket_ms as f64 / 60_000.0;
    let max_rate = counts
        .iter()
        .map(|c| c.iter().sum::<u64>() as f64 / per_minute)
        .fold(0.0, f64::max);
    let rate_top = nice_ceiling(max_rate);
    let slot_width = (WIDTH - LEFT) / buckets as f64;
    let mut bars = Vec::new();
    const CLASSES: [&str; 4] = ["succeeded", "failed", "cancelled", "unfinished"];
    for (b, c) in counts.iter().enumerate() {
        let x = LEFT + slot_width * b as f64 + slot_width * 0.1;
        let mut base = HEIGHT;
        for (slot, n) in c.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let height = (*n as f64 / per_minute) / rate_top * HEIGHT;
            base -= height;
            bars.push(Bar {
                x,
                y: base,
                width: slot_width * 0.8,
                height,
                class: CLASSES[slot],
                title: format!(
                    "{} UTC: {n} {}",
                    clock(start + bucket_ms * b as i64),
                    CLASSES[slot]
                ),
            });
        }
    }

    let quantiles: Vec<Option<(i64, i64)>> = durations
        .iter_mut()
        .map(|d| {
            d.sort_unstable();
            Some((percentile(d, 50.0)?, percentile(d, 95.0)?))
        })
        .collect();
    let max_ms = quantiles
        .iter()
        .flatten()
        .map(|(_, p95)| *p95 as f64)
        .fold(0.0, f64::max);
    let duration_top = nice_ceiling(max_ms);
    let line = |pick: fn(&(i64, i64)) -> i64| {
        let mut pieces = Vec::new();
        let mut piece = Vec::new();
        for (b, q) in quantiles.iter().enumerate() {
            match q {
                Some(q) => {
                    let x = LEFT + slot_width * (b as f64 + 0.5);
                    let y = HEIGHT - pick(q) as f64 / duration_top * HEIGHT;
                    piece.push(format!("{x:.1},{y:.1}"));
                }
                None if !piece.is_empty() => pieces.push(std::mem::take(&mut piece).join(" ")),
                None => {}
            }
        }
        if !piece.is_empty() {
            pieces.push(piece.join(" "));
        }
        pieces
    };
    let times = (0..=4)
        .map(|i| {
            let at = start + (end - start) * i / 4;
            TimeLabel {
                x: LEFT + (WIDTH - LEFT) * i as f64 / 4.0,
                anchor: match i {
                    0 => "start",
                    4 => "end",
                    _ => "middle",
                },
                label: clock(at),
            }
        })
        .collect();
    Charts {
        bars,
        rate_ticks: ticks(rate_top, number),
        p50_lines: line(|q| q.0),
        p95_lines: line(|q| q.1),
        duration_ticks: ticks(duration_top, duration_label),
        times,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(created_at: i64, status: RunOutcome, duration_ms: i64) -> RunPoint {
        RunPoint {
            created_at,
            status,
            duration_ms,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn axes_round_up() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(50.0), 50.0);
        assert_eq!(nice_ceiling(0.4), 0.5);
    }

    #[test]
    fn bars_stack_by_outcome_in_their_minute() {
        let now = 1_700_000_030_000; // 50 s into its minute
        let minute = now - 30_000; // the same minute
        let points = [
            point(minute + 1, RunOutcome::Succeeded, 10),
            point(minute + 2, RunOutcome::Succeeded, 30),
            point(minute + 3, RunOutcome::Failed, 20),
            point(minute - 60_000, RunOutcome::Unfinished, 0),
            // Outside the hour: not drawn, not counted.
            point(now - 3_700_000, RunOutcome::Succeeded, 5),
        ];
        let c = draw(&points, Window::Hour, now);
        assert_eq!(
            c.totals,
            Totals {
                succeeded: 2,
                failed: 1,
                cancelled: 0,
                unfinished: 1,
                p50_ms: Some(20),
                p95_ms: Some(30),
            }
        );
        // Three bars: the last minute's two outcomes, the one before's.
        assert_eq!(c.bars.len(), 3);
        let last: Vec<&Bar> = c.bars.iter().filter(|b| b.x > WIDTH - 20.0).collect();
        assert_eq!(last.len(), 2);
        assert_eq!(last[0].class, "succeeded");
        assert_eq!(last[1].class, "failed");
        // Stacked: failed sits on top of succeeded, twice as short.
        assert!((last[1].y + last[1].height - last[0].y).abs() < 1e-9);
        assert!((last[0].height - 2.0 * last[1].height).abs() < 1e-9);
        // The tallest stack (3 runs/min) is under the axis top (5).
        assert_eq!(c.rate_ticks.last().unwrap().label, "5");
        assert!(last[0].title.ends_with("2 succeeded"));
        // Durations: one point in the last minute (p50 20, p95 30); the
        // unfinished run's minute has none.
        assert_eq!(c.p50_lines.len(), 1);
        assert_eq!(c.p95_lines[0].split(' ').count(), 1);
        assert_eq!(c.duration_ticks.last().unwrap().label, "50 ms");
    }

    #[test]
    fn a_day_has_quarter_hour_bars_in_runs_per_minute() {
        let now = 1_700_000_000_000;
        let points: Vec<RunPoint> = (0..30)
            .map(|i| point(now - i * 1000, RunOutcome::Succeeded, 1500))
            .collect();
        let c = draw(&points, Window::Day, now);
        assert_eq!(c.totals.succeeded, 30);
        // 30 runs in (at most) two quarter hours: at most 2 runs a minute.
        assert!(c.bars.len() <= 2);
        assert_eq!(c.rate_ticks.last().unwrap().label, "2");
        assert_eq!(c.duration_ticks.last().unwrap().label, "2 s");
    }

    #[test]
    fn gridlines_fall_on_round_numbers() {
        let labels =
            |top| -> Vec<String> { ticks(top, number).into_iter().map(|t| t.label).collect() };
        assert_eq!(labels(5.0), ["0", "1", "2", "3", "4", "5"]);
        assert_eq!(labels(2.0), ["0", "0.5", "1", "1.5", "2"]);
        assert_eq!(labels(100.0), ["0", "20", "40", "60", "80", "100"]);
    }

    #[test]
    fn windows_parse() {
        assert_eq!(Window::parse(None), Some(Window::Hour));
        assert_eq!(Window::parse(Some("day")), Some(Window::Day));
        assert_eq!(Window::parse(Some("week")), None);
    }
}
