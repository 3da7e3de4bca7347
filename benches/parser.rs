//! Parser throughput: the experiment output grammar over typical lines.
//!
//! `cargo bench -p gaia-core --bench parser`

use std::hint::black_box;
use std::time::Instant;

use gaia_core::grammar::{Line, parse_line};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut lines = Vec::new();
    for g in 0..1000u64 {
        lines.push(format!(
            "Gen {g:4} | Best: {:7.1} | Ever: {:7.1} | Mean: {:7.1} | σ: 0.{:04} | Evals: {:8} | {:6.1}s",
            -130.5 + g as f64,
            -120.0 + g as f64,
            -399.8 + g as f64,
            g % 10_000,
            format_thousands(g * 64),
            g as f64 * 0.3
        ));
    }
    lines.push("Loading environment CartPole-v1".into());
    lines.push(r#"@gaia {"progress": 0.5, "status": "halfway"}"#.into());
    let rounds = 1000;
    let t = Instant::now();
    let mut gens = 0u64;
    for _ in 0..rounds {
        for l in &lines {
            if let Line::Gen(m) = parse_line(black_box(l)) {
                gens += m.len() as u64;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let n = (rounds * lines.len()) as f64;
    black_box(gens);
    println!(
        "parser: {:.2} M lines/s ({n:.0} lines in {secs:.2} s, 99.8 % generation lines)",
        n / secs / 1e6
    );
}

fn format_thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
