//! `{"mode":"dirty"}` writes a marker into its data section, its zeroed
//! (bss) statics, a heap allocation and freshly grown pages; `"scan"` looks
//! for the marker anywhere in linear memory; `"both"` does one then the
//! other in one run (the scan must find it: the probe works).
//!
//! The marker is never stored whole: each byte is computed where it is
//! compared, so a scan does not find its own copy.

use airlock_sdk::Error;
use serde_json::{Value, json};

const MARKER_LEN: usize = 16;
const PAGE: usize = 65_536;

fn marker_byte(i: usize) -> u8 {
    (std::hint::black_box(i).wrapping_mul(37).wrapping_add(11) as u8) ^ 0xA5
}

static mut DATA: [u8; 8192] = [7; 8192];
static mut BSS: [u8; 65_536] = [0; 65_536];

fn fill(region: &mut [u8]) {
    for (i, b) in region.iter_mut().enumerate() {
        *b = marker_byte(i % MARKER_LEN);
    }
}

fn dirty() {
    // SAFETY: one thread; nothing else holds these statics.
    unsafe {
        fill(&mut *std::ptr::addr_of_mut!(DATA));
        fill(&mut *std::ptr::addr_of_mut!(BSS));
    }
    let mut heap = vec![0u8; 1 << 20];
    fill(&mut heap);
    std::hint::black_box(&heap);
    drop(heap);
    let old = core::arch::wasm32::memory_grow(0, 4);
    assert_ne!(old, usize::MAX, "memory.grow failed");
    // SAFETY: the four pages just grown belong to no allocation.
    let grown = unsafe { std::slice::from_raw_parts_mut((old * PAGE) as *mut u8, 4 * PAGE) };
    fill(grown);
}

/// Offsets in linear memory where the whole marker starts.
fn scan() -> Vec<usize> {
    let end = core::arch::wasm32::memory_size(0) * PAGE;
    let mut found = Vec::new();
    let mut at = 1024;
    while at + MARKER_LEN <= end {
        // SAFETY: every address below `memory_size` is readable in wasm.
        let matches = (0..MARKER_LEN)
            .all(|i| unsafe { std::ptr::read_volatile((at + i) as *const u8) } == marker_byte(i));
        if matches {
            found.push(at);
            if found.len() >= 8 {
                break;
            }
            at += MARKER_LEN;
        } else {
            at += 1;
        }
    }
    found
}

fn run(input: Value) -> Result<Value, Error> {
    let mode = input["mode"].as_str().unwrap_or("scan");
    if mode == "dirty" || mode == "both" {
        dirty();
    }
    let statics_initial = unsafe {
        (*std::ptr::addr_of!(DATA)).iter().all(|b| *b == 7)
            && (*std::ptr::addr_of!(BSS)).iter().all(|b| *b == 0)
    };
    let found = if mode == "dirty" { Vec::new() } else { scan() };
    Ok(json!({
        "found_at": found,
        "statics_initial": statics_initial,
        "pages": core::arch::wasm32::memory_size(0),
    }))
}

airlock_sdk::step!(run);
