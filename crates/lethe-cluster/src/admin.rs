//! What operators type and read: node lists (`a=10.0.0.1:6380,b=10.0.0.2:6380` or plain
//! `host:port` lists), slot lists (`0-100,200`), and the status report of `lethe cluster
//! status`. Kept here, next to the map, so the binary only wires them to flags.

use crate::store::Heartbeat;
use crate::{NodeInfo, SLOTS, SlotMap, SlotMapError};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

/// Parses a comma-separated node list. Each item is `NAME=HOST:PORT` or `HOST:PORT` (named
/// `node-<PORT>`); IPv6 hosts go in brackets (`[::1]:6380`). Names must be unique.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeInfo>, SlotMapError> {
    let mut out: Vec<NodeInfo> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = match item.split_once('=') {
            Some((n, a)) => (Some(n.trim()), a.trim()),
            None => (None, item),
        };
        let bad = |why: &str| SlotMapError(format!("bad node {item:?}: {why}"));
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT or NAME=HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        let name = name.map_or_else(|| format!("node-{port}"), str::to_owned);
        let node = NodeInfo::new(name, host, port);
        // The map's own checks on the name.
        SlotMap::empty().add_node(node.clone())?;
        if out.iter().any(|n| n.name == node.name) {
            return Err(SlotMapError(format!(
                "node name {:?} appears twice (plain HOST:PORT items are named node-PORT; name \
                 them NAME=HOST:PORT when ports repeat)",
                node.name
            )));
        }
        out.push(node);
    }
    if out.is_empty() {
        return Err(SlotMapError("no nodes given".into()));
    }
    Ok(out)
}

/// Parses a slot list: comma-separated slots and inclusive ranges (`0-100,200`), each in
/// 0-16383. Returns the slots ascending, without repeats.
pub fn parse_slots(text: &str) -> Result<Vec<u16>, SlotMapError> {
    let mut out: Vec<u16> = Vec::new();
    let slot = |s: &str, item: &str| -> Result<u16, SlotMapError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|&n| n < SLOTS)
            .ok_or_else(|| {
                SlotMapError(format!(
                    "bad slot {item:?}: slots are numbers from 0 to 16383"
                ))
            })
    };
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (slot(a, item)?, slot(b, item)?);
                if a > b {
                    return Err(SlotMapError(format!(
                        "bad slot range {item:?}: the first slot is after the last"
                    )));
                }
                out.extend(a..=b);
            }
            None => out.push(slot(item, item)?),
        }
    }
    if out.is_empty() {
        return Err(SlotMapError("no slots given".into()));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Slots as ranges, `0-5460,5462`.
pub fn format_slots(slots: &[u16]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if i == j {
            let _ = write!(out, "{}", slots[i]);
        } else {
            let _ = write!(out, "{}-{}", slots[i], slots[j]);
        }
        i = j + 1;
    }
    out
}

/// The report of `lethe cluster status`: the epoch and slot totals, then a line per node of
/// the map (address, live or dead by heartbeat, slot count, ranges), then nodes heartbeating
/// without being in the map.
pub fn status_report(map: &SlotMap, live: &[(String, Heartbeat)], ttl: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "epoch {}, {} of {} slots assigned, {} nodes, heartbeat TTL {:?}",
        map.epoch(),
        map.assigned(),
        SLOTS,
        map.nodes().len(),
        ttl
    );
    let live_names: HashSet<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
    let width = map
        .nodes()
        .iter()
        .map(|n| n.name.len())
        .chain(live.iter().map(|(n, _)| n.len()))
        .max()
        .unwrap_or(4);
    for node in map.nodes() {
        let slots = map.slots_of(&node.name);
        let state = if live_names.contains(node.name.as_str()) {
            "live"
        } else {
            "dead"
        };
        let ranges = if slots.is_empty() {
            "-".to_owned()
        } else {
            format_slots(&slots)
        };
        let _ = writeln!(
            out,
            "{:width$}  {:21}  {state}  {:5} slots  {ranges}",
            node.name,
            node.address(),
            slots.len()
        );
    }
    let unassigned = usize::from(SLOTS) - map.assigned();
    if unassigned > 0 {
        let free: Vec<u16> = (0..SLOTS).filter(|&s| map.owner(s).is_none()).collect();
        let _ = writeln!(
            out,
            "unassigned: {unassigned} slots  {}",
            format_slots(&free)
        );
    }
    for (name, hb) in live {
        if map.node(name).is_none() {
            let _ = writeln!(
                out,
                "{name:width$}  {:21}  live  not in the map",
                format!("{}:{}", hb.host, hb.port)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists() {
        let n = parse_nodes("a=10.0.0.1:7000, b=h:7001").unwrap();
        assert_eq!(
            n,
            vec![
                NodeInfo::new("a", "10.0.0.1", 7000),
                NodeInfo::new("b", "h", 7001)
            ]
        );
        let n = parse_nodes("127.0.0.1:7000,127.0.0.1:7001,[::1]:7002").unwrap();
        let names: Vec<&str> = n.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-7000", "node-7001", "node-7002"]);
        assert_eq!(n[2].host, "::1");
        for bad in ["", "a=h", "h:0", "h:70000", "a=:1", "a.b=h:1", "h:1,x:1"] {
            assert!(parse_nodes(bad).is_err(), "{bad:?} accepted");
        }
        let dup = parse_nodes("a=h:1,a=h:2").unwrap_err();
        assert!(dup.0.contains("twice"), "{dup}");
    }

    #[test]
    fn slot_lists() {
        assert_eq!(parse_slots("0-3,200, 2").unwrap(), vec![0, 1, 2, 3, 200]);
        assert_eq!(parse_slots("16383").unwrap(), vec![16383]);
        for bad in ["", "16384", "5-1", "a", "1-", "-1"] {
            assert!(parse_slots(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_slots(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_slots(&[]), "");
    }

    #[test]
    fn report() {
        let mut m =
            SlotMap::even(vec![NodeInfo::new("a", "h", 1), NodeInfo::new("b", "h", 2)]).unwrap();
        m.reassign("b", &["a"]).unwrap();
        let live = vec![
            ("a".to_owned(), Heartbeat::now("h", 1)),
            ("z".to_owned(), Heartbeat::now("h", 9)),
        ];
        let r = status_report(&m, &live, Duration::from_secs(6));
        assert!(r.contains(&format!("epoch {}", m.epoch())), "{r}");
        assert!(r.contains("16384 of 16384"), "{r}");
        let a = r.lines().find(|l| l.starts_with("a ")).unwrap();
        assert!(
            a.contains("live") && a.contains("16384 slots") && a.ends_with("0-16383"),
            "{a}"
        );
        let b = r.lines().find(|l| l.starts_with("b ")).unwrap();
        assert!(b.contains("dead") && b.contains("0 slots"), "{b}");
        assert!(
            r.lines()
                .any(|l| l.starts_with("z ") && l.contains("not in the map")),
            "{r}"
        );
    }
}
