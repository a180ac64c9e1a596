//! Profile OddsCore without Python: `cargo run --release --example odds_profile FILE`.
use oddswire_native::databet::odds::{parse_log, OddsCore, VecStore};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("an NDJSON file of DATA.BET lines");
    let data = std::fs::read(path).unwrap();
    let all: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    // Lines until the first non-snapshot warm the table; the rest are timed.
    let warm = all.iter().take_while(|l| l.windows(8).any(|w| w == b"snapshot")).count();
    let lines = &all[warm..];
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    for round in 0..3 {
        let t = Instant::now();
        for l in lines {
            std::hint::black_box(parse_log(l).unwrap());
        }
        let parse = t.elapsed().as_secs_f64();
        let mut core = OddsCore::new(VecStore::default());
        for l in &all[..warm] {
            core.apply(l).unwrap();
        }
        let t = Instant::now();
        for l in lines {
            std::hint::black_box(core.apply(l).unwrap());
        }
        let apply = t.elapsed().as_secs_f64();
        println!(
            "round {round}: parse {:.0} MB/s, parse+apply {:.0} MB/s ({:.0} ns/line)",
            bytes as f64 / parse / 1e6,
            bytes as f64 / apply / 1e6,
            apply * 1e9 / lines.len() as f64
        );
    }
}
