//! `gregor group reset-offsets`: a plan of new committed offsets for an
//! inactive group, computed as kafka-consumer-groups does (clamped to each
//! partition's [log start, log end]), printed, and committed with
//! `--execute`.

use anyhow::Context;
use gregor_client::{GroupAdmin, OffsetMap};
use serde_json::json;

use crate::output::table;
use crate::topic_spec::resolve_partitions;

/// Flags of `gregor group reset-offsets`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// `TOPIC` (every partition) or `TOPIC:P,P,…` (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,…]")]
    pub topics: Vec<String>,
    /// Every partition the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To each partition's log start.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's log end.
    #[arg(long)]
    pub to_latest: bool,
    /// To the first offset at or after this time,
    /// `YYYY-MM-DDTHH:MM[:SS[.mmm]]` with `Z` or `±HH:MM` (local time
    /// without).
    #[arg(long, value_name = "ISO8601")]
    pub to_datetime: Option<String>,
    /// To this offset.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// Move each committed offset by N (negative: back).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the plan (without it, only print it).
    #[arg(long)]
    pub execute: bool,
}

/// Where offsets move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
    /// The first offset with a timestamp at or after this (ms).
    Datetime(i64),
    /// This offset.
    Offset(i64),
    /// The committed offset plus this.
    ShiftBy(i64),
}

/// What a partition's new offset is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Log start offset.
    pub start: i64,
    /// Log end offset (high watermark).
    pub end: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// For `Datetime`: the offset ListOffsets found for the time (`None`:
    /// no record that recent).
    pub at_time: Option<i64>,
}

impl ResetArgs {
    /// The target the flags name (clap ensures there is exactly one).
    pub fn target(&self) -> anyhow::Result<ResetTo> {
        Ok(
            match (
                self.to_earliest,
                self.to_latest,
                &self.to_datetime,
                self.to_offset,
                self.shift_by,
            ) {
                (true, ..) => ResetTo::Earliest,
                (_, true, ..) => ResetTo::Latest,
                (_, _, Some(t), ..) => ResetTo::Datetime(parse_datetime(t)?),
                (_, _, _, Some(o), _) => ResetTo::Offset(o),
                (.., Some(n)) => ResetTo::ShiftBy(n),
                _ => anyhow::bail!("give one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by"),
            },
        )
    }
}

/// A partition's new offset, within [log start, log end] as Kafka's tool
/// clamps it; shifting needs a committed offset.
pub fn new_offset(to: ResetTo, p: PartitionOffsets) -> Result<i64, String> {
    let wanted = match to {
        ResetTo::Earliest => p.start,
        ResetTo::Latest => p.end,
        // No record that recent: the log end, as Kafka's tool falls back.
        ResetTo::Datetime(_) => p.at_time.filter(|&o| o >= 0).unwrap_or(p.end),
        ResetTo::Offset(o) => o,
        ResetTo::ShiftBy(n) => p
            .committed
            .ok_or("there is no committed offset to shift")?
            .saturating_add(n),
    };
    // `max` before `min`: a log whose start passed its end (never, but a
    // broker's answer is input) still gets its end.
    Ok(wanted.max(p.start).min(p.end))
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM[:SS[.fraction]]`
/// followed by `Z`, `±HH:MM` or `±HHMM` — or nothing, for local time
/// (Kafka's `--to-datetime`).
pub fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "--to-datetime {text:?}: expected YYYY-MM-DDTHH:MM:SS[.mmm] with an optional Z or ±HH:MM, e.g. 2024-05-01T08:00:00.000Z"
        )
    };
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let digits = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let fields: Vec<&str> = date.split('-').collect();
    let (year, month, day) = match fields[..] {
        [y, m, d] => match (digits(y, 4), digits(m, 2), digits(d, 2)) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    // The zone: a trailing Z, or the last + or - of the time part.
    let (clock, zone_ms) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, Some(0))
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = match zone.len() {
            5 => (zone.get(1..3), zone.get(3..5)),
            6 if zone.as_bytes()[3] == b':' => (zone.get(1..3), zone.get(4..6)),
            _ => (None, None),
        };
        match (h.and_then(|h| digits(h, 2)), m.and_then(|m| digits(m, 2))) {
            (Some(h), Some(m)) if h < 24 && m < 60 => (clock, Some(sign * (h * 3600 + m * 60) * 1000)),
            _ => return Err(bad()),
        }
    } else {
        (time, None)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    let number = |s: &str| digits(s, 2);
    let (hour, minute, second) = match parts[..] {
        [h, m] => (number(h), number(m), Some(0)),
        [h, m, s] => (number(h), number(m), number(s)),
        _ => return Err(bad()),
    };
    let (Some(hour), Some(minute), Some(second)) = (hour, minute, second) else {
        return Err(bad());
    };
    let millis = match fraction {
        "" if !clock.contains('.') => 0,
        f if !f.is_empty() && f.len() <= 9 && f.chars().all(|c| c.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse::<i64>().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    anyhow::ensure!(
        valid_date && hour < 24 && minute < 60 && second < 60,
        "--to-datetime {text:?}: no such date or time"
    );
    match zone_ms {
        Some(offset) => {
            let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
            Ok(seconds * 1000 + millis - offset)
        }
        None => local_seconds(year, month, day, hour, minute, second)
            .map(|s| s * 1000 + millis)
            .ok_or_else(|| anyhow::anyhow!("--to-datetime {text:?}: not a local time here")),
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of a wall-clock time in the local zone.
fn local_seconds(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    // SAFETY: an all-zero `tm` is a valid value; mktime only reads and
    // normalises the struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(year - 1900).ok()?;
    tm.tm_mon = (month - 1) as i32;
    tm.tm_mday = day as i32;
    tm.tm_hour = hour as i32;
    tm.tm_min = minute as i32;
    tm.tm_sec = second as i32;
    tm.tm_isdst = -1;
    // SAFETY: as above.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t)
}

/// One partition of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset it replaces, if any.
    pub previous: Option<i64>,
    /// The new offset.
    pub new: i64,
}

/// Computes the plan (refused unless the group is inactive, as Kafka's
/// tool does), prints it, and commits it with `--execute`.
pub async fn run(admin: &mut GroupAdmin, args: ResetArgs, as_json: bool) -> anyhow::Result<()> {
    let target = args.target()?;
    let group = args.group.as_str();
    let description = admin
        .describe_group(group)
        .await
        .with_context(|| format!("describing group {group}"))?;
    anyhow::ensure!(
        matches!(description.state.as_str(), "Empty" | "Dead"),
        "Assignments can only be reset if the group '{group}' is inactive, but the current state is {} ({} members).",
        description.state,
        description.members.len()
    );
    let committed = admin
        .committed_offsets(group)
        .await
        .with_context(|| format!("fetching group {group}'s offsets"))?;
    let partitions: Vec<(String, i32)> = if args.all_topics {
        committed.keys().cloned().collect()
    } else {
        resolve_partitions(admin, &args.topics).await?
    };
    anyhow::ensure!(
        !partitions.is_empty(),
        "nothing to reset: group {group} has no committed offsets (name the partitions with --topic)"
    );
    let mut plan = Vec::new();
    for (topic, partition) in partitions {
        let context = || format!("offsets of {topic}-{partition}");
        let start = admin.log_offset(&topic, partition, -2).await.with_context(context)?;
        let end = admin.log_offset(&topic, partition, -1).await.with_context(context)?;
        let at_time = match target {
            ResetTo::Datetime(ms) => Some(admin.log_offset(&topic, partition, ms).await.with_context(context)?),
            _ => None,
        };
        let previous = committed.get(&(topic.clone(), partition)).copied();
        let offsets = PartitionOffsets {
            start,
            end,
            committed: previous,
            at_time,
        };
        let new = new_offset(target, offsets).map_err(|e| anyhow::anyhow!("cannot reset {topic}-{partition}: {e}"))?;
        plan.push(PlannedOffset {
            topic,
            partition,
            previous,
            new,
        });
    }
    if args.execute {
        let offsets: OffsetMap = plan.iter().map(|p| ((p.topic.clone(), p.partition), p.new)).collect();
        admin.commit_offsets(group, &offsets).await.with_context(|| {
            format!("committing group {group}'s new offsets (the group must be inactive: Empty or Dead)")
        })?;
    }
    print_plan(group, &plan, args.execute, as_json);
    Ok(())
}

fn print_plan(group: &str, plan: &[PlannedOffset], executed: bool, as_json: bool) {
    if as_json {
        let offsets: Vec<_> = plan
            .iter()
            .map(|p| json!({"topic": p.topic, "partition": p.partition, "previous_offset": p.previous, "new_offset": p.new}))
            .collect();
        println!("{}", json!({"group": group, "executed": executed, "offsets": offsets}));
        return;
    }
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|p| {
            vec![
                group.to_string(),
                p.topic.clone(),
                p.partition.to_string(),
                p.new.to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows));
    if !executed {
        eprintln!("(dry run: nothing committed; add --execute to commit these offsets)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offsets(start: i64, end: i64, committed: Option<i64>, at_time: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            start,
            end,
            committed,
            at_time,
        }
    }

    #[test]
    fn targets_as_kafka_computes_them() {
        let p = offsets(10, 100, Some(40), Some(70));
        assert_eq!(new_offset(ResetTo::Earliest, p), Ok(10));
        assert_eq!(new_offset(ResetTo::Latest, p), Ok(100));
        assert_eq!(new_offset(ResetTo::Offset(55), p), Ok(55));
        assert_eq!(new_offset(ResetTo::Offset(5), p), Ok(10), "below the log start");
        assert_eq!(new_offset(ResetTo::Offset(500), p), Ok(100), "past the log end");
        assert_eq!(new_offset(ResetTo::ShiftBy(-15), p), Ok(25));
        assert_eq!(new_offset(ResetTo::ShiftBy(-100), p), Ok(10));
        assert_eq!(new_offset(ResetTo::ShiftBy(i64::MAX), p), Ok(100));
        assert_eq!(new_offset(ResetTo::Datetime(0), p), Ok(70));
        assert_eq!(
            new_offset(ResetTo::Datetime(0), offsets(10, 100, None, Some(-1))),
            Ok(100),
            "no record that recent: the log end"
        );
        assert!(new_offset(ResetTo::ShiftBy(1), offsets(0, 9, None, None)).is_err());
    }

    #[test]
    fn datetimes_in_kafkas_formats() {
        let may_first = 1_714_550_400_000; // 2024-05-01T08:00:00Z
        assert_eq!(parse_datetime("2024-05-01T08:00:00.000Z").unwrap(), may_first);
        assert_eq!(parse_datetime("2024-05-01T08:00Z").unwrap(), may_first);
        assert_eq!(
            parse_datetime("2024-05-01T10:00:00.250+02:00").unwrap(),
            may_first + 250
        );
        assert_eq!(parse_datetime("2024-05-01T03:30:00-0430").unwrap(), may_first);
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z").unwrap(), 951_782_400_000);
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 08:00:00Z",
            "2024-13-01T08:00:00Z",
            "2023-02-29T08:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T08:00:00+25:00",
            "2024-05-01T08:00:00.Z",
            "2024-5-1T08:00:00Z",
            "yesterday",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?} was accepted");
        }
    }

    /// (year, month, day) of a day count since 1970-01-01 (Hinnant's
    /// `civil_from_days`), to check `days_from_civil` against.
    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    fn target() -> impl Strategy<Value = ResetTo> {
        prop_oneof![
            Just(ResetTo::Earliest),
            Just(ResetTo::Latest),
            any::<i64>().prop_map(ResetTo::Datetime),
            any::<i64>().prop_map(ResetTo::Offset),
            any::<i64>().prop_map(ResetTo::ShiftBy),
        ]
    }

    proptest! {
        #[test]
        fn plans_stay_within_the_log(
            to in target(),
            start in 0i64..1_000_000,
            len in 0i64..1_000_000,
            committed in proptest::option::of(-1i64..3_000_000),
            at_time in proptest::option::of(-1i64..3_000_000),
        ) {
            let end = start + len;
            if let Ok(o) = new_offset(to, offsets(start, end, committed, at_time)) {
                prop_assert!((start..=end).contains(&o), "{o} outside [{start}, {end}]");
            } else {
                prop_assert!(matches!(to, ResetTo::ShiftBy(_)) && committed.is_none());
            }
        }

        #[test]
        fn utc_datetimes_round_trip(ms in 0i64..4_102_444_800_000) {
            let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
            let (y, m, d) = civil_from_days(days);
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000
            );
            prop_assert_eq!(parse_datetime(&text).unwrap(), ms, "{}", text);
        }

        #[test]
        fn any_text_is_an_answer_not_a_panic(text in "\\PC{0,40}") {
            let _ = parse_datetime(&text);
            let _ = crate::topic_spec::parse_topic_spec(&text);
        }
    }
}
