//! The simulator's command line: N nodes running the real engine (`gossip::sim`) on a
//! virtual network (links of 10-50 ms) and a virtual clock.
//!
//! ```text
//! cargo run --release --example simulate                  # the table in BENCHMARKS.md
//! cargo run --release --example simulate -- --nodes 1000 --scenario one-sender \
//!     --fanout 5 --strategy random --seed 7 --json
//! ```
//!
//! Flags: `--nodes N`, `--scenario one-sender|every-node|random-sender|cold-join`,
//! `--fanout K`, `--strategy random|round_robin|...`, `--seed S`, `--loss P`,
//! `--max-events N`, `--max-bytes B`, `--eager-only` (lazy push off, as in the node),
//! `--json` (one JSON object per scenario).

use gossip::PeerSelectionStrategy;
use gossip::sim::SimConfig;
use gossip::sim::scenario::{self, Outcome, Scenario};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn parsed<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match arg(args, name) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| format!("{name}: cannot read {s:?}")),
    }
}

struct Plan {
    nodes: usize,
    scenario: Scenario,
    strategy: PeerSelectionStrategy,
    fanout: usize,
    big_messages: bool,
}

fn default_plan() -> Vec<Plan> {
    use PeerSelectionStrategy::Random;
    let plan = |nodes, scenario, strategy, fanout| Plan {
        nodes,
        scenario,
        strategy,
        fanout,
        big_messages: false,
    };
    let mut out = Vec::new();
    for n in [10, 100, 1000, 10_000] {
        for f in [3, 5, 8] {
            out.push(plan(n, Scenario::OneSender, Random, f));
        }
    }
    for n in [10, 100, 1000] {
        for f in [3, 8] {
            out.push(plan(n, Scenario::RandomSender, Random, f));
            // 1,000 senders x 1,000 nodes x fanout 8 is 8 M pushes: minutes of wall time.
            if n < 1000 || f == 3 {
                out.push(plan(n, Scenario::EveryNode, Random, f));
            }
        }
    }
    for s in PeerSelectionStrategy::ALL {
        out.push(plan(1000, Scenario::OneSender, s, 3));
        out.push(plan(1000, Scenario::RandomSender, s, 3));
    }
    for n in [10, 50] {
        out.push(plan(n, Scenario::ColdJoin, Random, 3));
        out.push(Plan {
            big_messages: true,
            ..plan(n, Scenario::ColdJoin, Random, 3)
        });
    }
    out
}

fn row(o: &Outcome, big: bool) -> String {
    let name = match (o.scenario, big) {
        ("cold-join", true) => "cold-join, 500 events / 4 MiB per message",
        (s, _) => s,
    };
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {} | {:.1} |",
        o.nodes,
        o.strategy,
        o.fanout,
        o.time_to_all_ms,
        o.rounds,
        o.ldh,
        o.rmr,
        o.bytes_per_node_s_at_rest,
        o.missed,
        o.wall_s
    )
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed: u64 = parsed(&args, "--seed", 7)?;
    let loss: f64 = parsed(&args, "--loss", 0.0)?;
    let json = args.iter().any(|a| a == "--json");
    let plan = match arg(&args, "--nodes") {
        None => default_plan(),
        Some(n) => {
            let nodes = n
                .parse()
                .map_err(|_| format!("--nodes: cannot read {n:?}"))?;
            let scenario = match arg(&args, "--scenario") {
                None => Scenario::OneSender,
                Some(s) => Scenario::parse(&s).ok_or(format!("unknown scenario {s:?}"))?,
            };
            let strategy = match arg(&args, "--strategy") {
                None => PeerSelectionStrategy::Random,
                Some(s) => scenario::strategy(&s).ok_or(format!("unknown strategy {s:?}"))?,
            };
            vec![Plan {
                nodes,
                scenario,
                strategy,
                fanout: parsed(&args, "--fanout", 3)?,
                big_messages: false,
            }]
        }
    };
    if !json {
        println!(
            "seed {seed}; the real engine; links 10-50 ms, loss {loss}; gossip interval 1 s; 100 events / 1 MiB per message; 100-byte payloads"
        );
        println!();
        println!(
            "| scenario | nodes | strategy | fanout | time to all (ms) | rounds | LDH | RMR | bytes/node/s at rest | missed | wall (s) |"
        );
        println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for p in plan {
        let mut c = SimConfig::new(p.nodes, seed);
        c.fanout = p.fanout;
        c.strategy = p.strategy;
        c.net.loss = loss;
        c.limits.max_events = parsed(&args, "--max-events", c.limits.max_events)?;
        c.limits.max_bytes = parsed(&args, "--max-bytes", c.limits.max_bytes)?;
        if args.iter().any(|a| a == "--eager-only") {
            c.lazy_push = false;
        }
        if p.big_messages {
            c.limits.max_events = 500;
            c.limits.max_bytes = 4 * 1024 * 1024;
        }
        let o = scenario::run(c, p.scenario);
        if json {
            println!("{}", serde_json::to_string(&o).map_err(|e| e.to_string())?);
        } else {
            println!("{}", row(&o, p.big_messages));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_prints_every_json_field() {
        let o = scenario::quick(10, Scenario::OneSender, 3, 1);
        let v: serde_json::Value = serde_json::to_value(&o).unwrap();
        for k in [
            "nodes",
            "scenario",
            "fanout",
            "time_to_all_ms",
            "ldh",
            "rmr",
            "bytes_per_node_s_at_rest",
            "missed",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert_eq!(o.missed, 0);
    }
}
