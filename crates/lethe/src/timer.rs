//! Expiry reclamation: a hierarchical timer wheel over a shard's slots.
//!
//! Reads never return an expired entry (they compare the deadline themselves), so the wheel is
//! only about reclaiming memory and telling listeners, without scanning the cache. Each write to
//! a shard advances its wheel to the current time; the cost is amortised O(1) per expiring entry
//! plus one cascade per level an entry passes through.
//!
//! Six levels of 64 buckets; a level-0 bucket spans 2^20 ns (~1 ms), each level 64 times the one
//! below, so the wheel covers ~2.3 years and anything beyond waits in the top level and is
//! rescheduled when its bucket comes round. Deadlines may move later without the wheel knowing
//! (sliding and adaptive TTL extend them from the read path with an atomic store): when a bucket
//! fires, each entry's current deadline is re-read and the entry is rescheduled if not yet due.
//!
//! Links live in a vector parallel to the shard's slots (intrusive doubly linked lists by index),
//! so scheduling and unscheduling are O(1) and allocate nothing once the vector has grown.

const LEVELS: usize = 6;
const BUCKETS: usize = 64;
const BASE_SHIFT: u32 = 20;
const LEVEL_BITS: u32 = 6;
const NIL: u32 = u32::MAX;
const UNSCHEDULED: u16 = u16::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    bucket: u16,
}

const FREE_LINK: Link = Link {
    prev: NIL,
    next: NIL,
    bucket: UNSCHEDULED,
};

#[derive(Debug)]
pub(crate) struct TimerWheel {
    links: Vec<Link>,
    heads: [u32; LEVELS * BUCKETS],
    /// Time the wheel has been advanced to.
    time: u64,
    scheduled: usize,
}

fn shift(level: usize) -> u32 {
    BASE_SHIFT + LEVEL_BITS * level as u32
}

impl TimerWheel {
    pub(crate) fn new(now: u64) -> Self {
        TimerWheel {
            links: Vec::new(),
            heads: [NIL; LEVELS * BUCKETS],
            time: now,
            scheduled: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.scheduled
    }

    fn bucket_for(&self, deadline: u64) -> usize {
        let delta = deadline.saturating_sub(self.time);
        for level in 0..LEVELS {
            if level == LEVELS - 1 || delta < 1u64 << shift(level + 1) {
                // The top level holds anything further out; clamp so the index stays within the
                // 64 buckets ahead of now and the entry is rescheduled when it comes round.
                let span_end = self
                    .time
                    .saturating_add((1u64 << shift(level + 1)) - (1u64 << shift(level)));
                // Past-due deadlines go in the current bucket, processed on the next advance.
                let at = deadline.clamp(self.time, span_end);
                return level * BUCKETS + ((at >> shift(level)) as usize & (BUCKETS - 1));
            }
        }
        unreachable!()
    }

    /// Schedules slot `idx` to fire at `deadline` (replacing any previous schedule).
    pub(crate) fn schedule(&mut self, idx: u32, deadline: u64) {
        self.unschedule(idx);
        let i = idx as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, FREE_LINK);
        }
        let b = self.bucket_for(deadline);
        let head = self.heads[b];
        self.links[i] = Link {
            prev: NIL,
            next: head,
            bucket: b as u16,
        };
        if head != NIL {
            self.links[head as usize].prev = idx;
        }
        self.heads[b] = idx;
        self.scheduled += 1;
    }

    /// Removes slot `idx` from the wheel if it is scheduled.
    pub(crate) fn unschedule(&mut self, idx: u32) {
        let Some(link) = self.links.get(idx as usize).copied() else {
            return;
        };
        if link.bucket == UNSCHEDULED {
            return;
        }
        if link.prev == NIL {
            self.heads[link.bucket as usize] = link.next;
        } else {
            self.links[link.prev as usize].next = link.next;
        }
        if link.next != NIL {
            self.links[link.next as usize].prev = link.prev;
        }
        self.links[idx as usize] = FREE_LINK;
        self.scheduled -= 1;
    }

    /// Advances to `now`, pushing every slot whose current deadline (from `deadline_of`) has
    /// passed onto `expired` and rescheduling the others found in the buckets that came due.
    pub(crate) fn advance(
        &mut self,
        now: u64,
        deadline_of: impl Fn(u32) -> u64,
        expired: &mut Vec<u32>,
    ) {
        if now < self.time || self.scheduled == 0 {
            self.time = self.time.max(now);
            return;
        }
        let before = self.time;
        self.time = now;
        for level in 0..LEVELS {
            let s = shift(level);
            let (from, to) = (before >> s, now >> s);
            // Buckets from the one holding `before` up to the one holding `now`, inclusive: the
            // first may hold entries scheduled within the current tick.
            let count = (to - from + 1).min(BUCKETS as u64);
            for t in from..from + count {
                let b = level * BUCKETS + (t as usize & (BUCKETS - 1));
                let mut cur = std::mem::replace(&mut self.heads[b], NIL);
                while cur != NIL {
                    let next = self.links[cur as usize].next;
                    self.links[cur as usize] = FREE_LINK;
                    self.scheduled -= 1;
                    let deadline = deadline_of(cur);
                    if deadline <= now {
                        expired.push(cur);
                    } else {
                        // Rescheduling into bucket `b` itself is safe: it was detached above.
                        self.schedule(cur, deadline);
                    }
                    cur = next;
                }
            }
            if from == to {
                // Higher levels' buckets have not turned over.
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MS: u64 = 1_000_000;

    fn run(w: &mut TimerWheel, now: u64, deadlines: &HashMap<u32, u64>) -> Vec<u32> {
        let mut out = Vec::new();
        w.advance(now, |i| deadlines[&i], &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn fires_each_entry_once_at_or_after_its_deadline() {
        let start = 1_700_000_000 * 1_000 * MS;
        let mut w = TimerWheel::new(start);
        let mut deadlines = HashMap::new();
        let offsets = [
            0,
            1,
            5 * MS,
            70 * MS,
            5_000 * MS,
            400_000 * MS,
            20_000_000 * MS,
            400 * 86_400_000 * MS,
        ];
        for (i, off) in offsets.iter().enumerate() {
            deadlines.insert(i as u32, start + off);
            w.schedule(i as u32, start + off);
        }
        let mut fired = HashMap::new();
        let mut now = start;
        // Walk time forward in uneven steps through more than a year.
        let mut step = MS / 3;
        while now < start + 401 * 86_400_000 * MS {
            now += step;
            step = (step * 3 / 2).min(3_600_000 * MS);
            for idx in run(&mut w, now, &deadlines) {
                assert!(deadlines[&idx] <= now, "fired early");
                assert!(fired.insert(idx, now).is_none(), "fired twice");
            }
        }
        assert_eq!(fired.len(), offsets.len());
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn unschedule_and_extended_deadlines() {
        let mut w = TimerWheel::new(0);
        let mut deadlines = HashMap::from([(0, 10 * MS), (1, 10 * MS), (2, 10 * MS)]);
        for i in 0..3 {
            w.schedule(i, 10 * MS);
        }
        w.unschedule(1);
        w.unschedule(1);
        deadlines.insert(2, 500 * MS);
        assert_eq!(run(&mut w, 20 * MS, &deadlines), vec![0]);
        assert_eq!(w.len(), 1, "2 was rescheduled");
        assert_eq!(run(&mut w, 499 * MS, &deadlines), Vec::<u32>::new());
        assert_eq!(run(&mut w, 501 * MS, &deadlines), vec![2]);
    }

    #[test]
    fn big_jump_expires_everything_due() {
        let mut w = TimerWheel::new(0);
        let deadlines: HashMap<u32, u64> = (0..1000).map(|i| (i, u64::from(i) * 7 * MS)).collect();
        for (&i, &d) in &deadlines {
            w.schedule(i, d);
        }
        let fired = run(&mut w, 3_500 * MS, &deadlines);
        assert_eq!(fired.len(), 501);
        assert_eq!(w.len(), 499);
    }
}
