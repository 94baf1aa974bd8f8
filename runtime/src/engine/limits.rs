//! Per-run limits: a memory limiter over the *whole* run and the CPU budget
//! counted in epoch ticks.
//!
//! Why total memory: a component may contain several core instances, each
//! with its own memories and tables. Capping each memory alone would let a
//! component multiply its share; the limiter sums every memory and table of
//! the run's store.

use std::time::{Duration, Instant};

/// What one run may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock time from instantiation to the end of `run`.
    pub wall_time: Duration,
    /// Time spent executing guest code, in epoch ticks of the engine.
    pub cpu_time: Duration,
    /// All linear memories and tables of the run together.
    pub memory_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(30),
            cpu_time: Duration::from_secs(10),
            memory_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Bytes one table element costs in wasmtime (a pointer).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Tracks a run's memory and tables against one total cap, and integrates
/// what it holds over time (memory-time, for usage).
///
/// Why the integral is exact: wasm memories and tables only grow, and every
/// growth passes through here, so the total held is a step function whose
/// steps this sees; between two growths it is constant.
#[derive(Debug)]
pub struct RunLimiter {
    cap: usize,
    used: usize,
    peak: usize,
    /// Set when a growth was refused: a later trap is then a memory limit.
    refused: Option<usize>,
    /// When `used` last changed, and byte-microseconds held before that.
    since: Instant,
    byte_micros: u128,
}

impl RunLimiter {
    pub fn new(cap: u64) -> Self {
        Self {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            used: 0,
            peak: 0,
            refused: None,
            since: Instant::now(),
            byte_micros: 0,
        }
    }

    /// Memory-time up to `now`: KiB x milliseconds of memory and tables
    /// held since the limiter was made (the run's store was created).
    pub fn kib_ms(&self, now: Instant) -> u64 {
        let total = self.byte_micros + self.held_since_change(now);
        u64::try_from(total / (1024 * 1000)).unwrap_or(u64::MAX)
    }

    fn held_since_change(&self, now: Instant) -> u128 {
        let micros = now.saturating_duration_since(self.since).as_micros();
        micros.saturating_mul(self.used as u128)
    }

    /// Highest total of memory + tables the run reached, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The total the run asked for when it was refused, if it was.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }

    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let extra = desired.saturating_sub(current);
        let total = self.used.saturating_add(extra);
        if total > self.cap {
            self.refused = Some(total);
            return false;
        }
        let now = Instant::now();
        self.byte_micros = self.byte_micros.saturating_add(self.held_since_change(now));
        self.since = now;
        self.used = total;
        self.peak = self.peak.max(total);
        true
    }
}

impl wasmtime::ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

/// The CPU budget, spent one epoch tick at a time while guest code runs.
#[derive(Debug)]
pub struct CpuMeter {
    pub budget_ticks: u64,
    pub used_ticks: u64,
}

/// The guest used up its CPU budget. The epoch callback traps with this.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget of {budget_ticks} ticks used up")]
pub struct CpuBudgetExceeded {
    pub budget_ticks: u64,
}

impl CpuMeter {
    pub fn new(cpu_time: Duration, tick: Duration) -> Self {
        let ticks = (cpu_time.as_nanos() / tick.as_nanos().max(1)).max(1);
        Self {
            budget_ticks: u64::try_from(ticks).unwrap_or(u64::MAX),
            used_ticks: 0,
        }
    }

    /// Called at each tick the guest was running; `Err` stops it.
    pub fn tick(&mut self) -> Result<(), CpuBudgetExceeded> {
        self.used_ticks += 1;
        if self.used_ticks > self.budget_ticks {
            return Err(CpuBudgetExceeded {
                budget_ticks: self.budget_ticks,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memories_and_tables_share_one_total() {
        let mut l = RunLimiter::new(1000);
        assert!(l.memory_growing(0, 600, None).unwrap());
        // 50 table elements cost 400 bytes on 64-bit: total 1000, allowed.
        assert!(l.table_growing(0, 50, None).unwrap());
        assert_eq!(l.refused(), None);
        assert!(!l.memory_growing(600, 601, None).unwrap());
        assert_eq!(l.refused(), Some(1001));
        assert_eq!(l.peak(), 1000);
    }

    #[test]
    fn memory_time_integrates_what_is_held_between_growths() {
        let mut l = RunLimiter::new(u64::MAX);
        // 1 MiB held for 2 s, then 3 MiB for 1 s: 2048 + 3072 KiB·s.
        let start = l.since;
        l.used = 1024 * 1024;
        let later = start + Duration::from_secs(2);
        l.byte_micros += l.held_since_change(later);
        l.since = later;
        l.used = 3 * 1024 * 1024;
        let end = later + Duration::from_secs(1);
        assert_eq!(l.kib_ms(end), (2048 + 3072) * 1000);
        // Nothing held: nothing counted, however long.
        let empty = RunLimiter::new(10);
        assert_eq!(empty.kib_ms(empty.since + Duration::from_secs(60)), 0);
        // A growth through the limiter counts from when it happened.
        let mut grown = RunLimiter::new(u64::MAX);
        assert!(grown.memory_growing(0, 1024 * 1024, None).unwrap());
        let at = grown.since;
        assert_eq!(grown.kib_ms(at + Duration::from_millis(500)), 1024 * 500);
    }

    #[test]
    fn cpu_meter_allows_its_budget_then_stops() {
        let mut m = CpuMeter::new(Duration::from_millis(3), Duration::from_millis(1));
        assert!(m.tick().is_ok());
        assert!(m.tick().is_ok());
        assert!(m.tick().is_ok());
        assert!(m.tick().is_err());
    }
}
