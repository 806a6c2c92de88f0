//! Lists of targets for batch runs: a file of targets, one a line, and a deterministic split
//! of the list between the workers of a batch runner (a Kubernetes indexed Job, Azure Batch,
//! GNU parallel over ssh), each of which is given its shard number.

use std::str::FromStr;

/// The most targets a list may hold: a bound on what a file read from anywhere makes us keep.
pub const MAX_TARGETS: usize = 1_000_000;

/// The targets of a list: one a line, surrounding white space trimmed; blank lines and lines
/// whose first non-blank character is `#` are skipped. (A `#` later in a line is kept: it may
/// be part of a path or URL.) `None` when the list holds more than [`MAX_TARGETS`].
pub fn parse_target_list(text: &str) -> Option<Vec<String>> {
    let targets: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(MAX_TARGETS + 1)
        .map(str::to_string)
        .collect();
    (targets.len() <= MAX_TARGETS).then_some(targets)
}

/// Shard `index` of `count`: of a list of targets, the one at (0-based) position `k` belongs
/// to shard `k mod count`. Indexes start at 0, as Kubernetes' `JOB_COMPLETION_INDEX` does, so
/// that `--shard "$JOB_COMPLETION_INDEX/N"` works as it is. Every target belongs to exactly
/// one shard, and the split depends only on the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// How many shards the list is split into (at least 1).
    pub count: u32,
}

impl Shard {
    /// Whether the target at 0-based position `k` of the list is this shard's.
    pub fn keeps(&self, k: usize) -> bool {
        k % self.count as usize == self.index as usize
    }

    /// This shard's part of `items`, in their order.
    pub fn select<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(k, _)| self.keeps(*k))
            .map(|(_, t)| t)
            .collect()
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`: shard `I` (0-based) of `N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (shard I of N, I counted from 0)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} in {s:?} is not a shard number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} in {s:?} is not a number of shards"))?;
        if count == 0 {
            return Err(format!("{s:?}: the number of shards must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "{s:?}: shards are numbered from 0 to {} (from 0, as JOB_COMPLETION_INDEX)",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_skip_comments_and_blank_lines() {
        let text = "# disks of the fleet\n\n  /dev/sdc  \nhttps://a/b?sig=x#frag\n   # indented comment\r\nvm2.vhd\r\n";
        assert_eq!(
            parse_target_list(text).unwrap(),
            ["/dev/sdc", "https://a/b?sig=x#frag", "vm2.vhd"]
        );
        assert_eq!(parse_target_list("").unwrap(), Vec::<String>::new());
        let long = "x\n".repeat(MAX_TARGETS + 1);
        assert!(parse_target_list(&long).is_none());
    }

    #[test]
    fn shards_split_a_list_exactly_once() {
        let list: Vec<usize> = (0..23).collect();
        for count in 1..=7u32 {
            let mut all: Vec<usize> = (0..count)
                .flat_map(|index| Shard { index, count }.select(list.clone()))
                .collect();
            all.sort();
            assert_eq!(all, list, "{count} shards");
        }
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!(s.select(list.clone()), [1, 4, 7, 10, 13, 16, 19, 22]);
        assert_eq!("0/1".parse::<Shard>().unwrap().select(vec![5, 6]), [5, 6]);
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["3/3", "1/0", "1", "a/2", "-1/2", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
