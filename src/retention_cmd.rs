//! `heliosdb audit prune` and `heliosdb audit hold`.

use anyhow::{Context, bail};
use heliosdb_lite::Database;
use heliosdb_lite::engine::audit::table::timestamp;
use heliosdb_lite::engine::audit::{PruneBefore, PruneReport};
use std::io::Write;

/// Parses an age like `90d`, `12h`, `30m`, `45s` or `2w` into microseconds.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: add a unit, e.g. 90d (d, h, m, s or w)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then a unit, e.g. 90d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use d, h, m, s or w)"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `heliosdb --db PATH audit prune (--older-than AGE | --before-seq SEQ) [--dry-run]`.
pub fn prune(
    db: &Database,
    older_than: Option<i64>,
    before_seq: Option<u64>,
    dry_run: bool,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let before = match (older_than, before_seq) {
        (Some(age), None) => {
            let now = heliosdb_lite::chrono::Utc::now().timestamp_micros();
            PruneBefore::Time(now.saturating_sub(age))
        }
        (None, Some(seq)) => PruneBefore::Seq(seq),
        _ => bail!("give one of --older-than AGE and --before-seq SEQ"),
    };
    let report = db.prune_before(before, dry_run).context("prune")?;
    print_report(&report, &mut out)
}

fn print_report(report: &PruneReport, out: &mut impl Write) -> anyhow::Result<()> {
    let verb = if report.dry_run {
        "would prune"
    } else {
        "pruned"
    };
    if report.events == 0 {
        writeln!(
            out,
            "nothing to prune: the ledger starts at seq {}",
            report.first_seq
        )?;
    } else {
        writeln!(
            out,
            "{verb} {} events: seq {}..={}",
            report.events, report.first_seq, report.pruned_through
        )?;
    }
    if report.requested_through > report.pruned_through {
        writeln!(
            out,
            "the request covered events up to seq {}",
            report.requested_through
        )?;
    }
    if let Some(why) = &report.limited_by {
        writeln!(out, "limited: {why}")?;
    }
    if !report.prune_events.is_empty() {
        let seqs: Vec<String> = report.prune_events.iter().map(u64::to_string).collect();
        writeln!(out, "recorded as PRUNE event(s) {}", seqs.join(", "))?;
    }
    Ok(())
}

/// `heliosdb --db PATH audit hold [on --reason TEXT | off]`.
pub fn hold(
    db: &Database,
    change: Option<bool>,
    reason: Option<&str>,
    by: &str,
    mut out: impl Write,
) -> anyhow::Result<()> {
    match change {
        Some(true) => {
            let reason =
                reason.context("a legal hold needs --reason (a case or matter reference)")?;
            db.set_legal_hold(Some(reason), by)?;
        }
        Some(false) => {
            if db.legal_hold()?.is_none() {
                bail!("no legal hold is placed");
            }
            db.set_legal_hold(None, by)?;
        }
        None => {}
    }
    match db.legal_hold()? {
        Some(hold) => writeln!(
            out,
            "legal hold: on since {} by {}: {}",
            timestamp(hold.since_us).format("%Y-%m-%d %H:%M:%S UTC"),
            hold.by,
            hold.reason
        )?,
        None => writeln!(out, "legal hold: off")?,
    }
    let retention = &db.options().retention;
    if retention.legal_hold {
        writeln!(
            out,
            "legal hold from the configuration: on (audit.legal_hold)"
        )?;
    }
    if retention.lockdown {
        writeln!(
            out,
            "lockdown: on (audit.audit_trail_lockdown): never pruned"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_age("90d"), Ok(90 * 86_400 * 1_000_000));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400 * 1_000_000));
        assert_eq!(parse_age("45s"), Ok(45_000_000));
        assert!(parse_age("90").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("9y").is_err());
        assert!(parse_age("99999999999999999d").is_err());
    }
}
