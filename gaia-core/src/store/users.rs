//! Users and what they use: user records (share, limits), per-user job counts kept in step with
//! every job by `save_job`, recent usage (decayed, for fair share) and the hourly usage history
//! (for `gaia usage --since`). The per-user queue index lives with the jobs (`jobs::FAIR_QUEUE`).
//!
//! Usage is charged when an attempt ends — any end: reported, given back, expired, cancelled —
//! for the time it held its slot (worker-seconds) and that time the GPUs it asked for
//! (GPU-seconds), to the job's owner, in the transaction that ends it. So usage survives a
//! restart and is never counted twice.

use std::time::Duration;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Reader, Tx, from_json, to_json};
use crate::error::{Error, RequestError, StoreError};
use crate::fairshare::{self, Decayed};
use crate::model::{ADMIN_USER, Job, JobState, Millis, UserInfo, now_ms};

/// user name → the user's record (share, limits), JSON. The admin user needs none.
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// user name → [`UsageRecord`] (totals), JSON.
pub(crate) const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
/// user name → (share, max running or 0, recent worker-seconds, recent GPU-seconds, decayed to
/// (ms), running jobs, sum of their start times (ms)): everything a claim reads of a user, in
/// one fixed-width lookup without decoding ([`Standing`]). The share and limit are copied from
/// the user's record when it is saved; the rest lives only here.
pub(crate) const STANDINGS: TableDefinition<&str, StandingTuple> =
    TableDefinition::new("standings");
/// (user name, hour since the epoch) → (worker ms, GPU ms) used in that hour.
pub(crate) const USAGE_HOURS: TableDefinition<(&str, u64), (u64, u64)> =
    TableDefinition::new("usage_hours");
/// (user name, counter) → value: `queued` (jobs), `running_gpus` (GPUs the running jobs asked
/// for), `running_gpu_since` (sum of start × GPUs). Running jobs are counted in [`STANDINGS`].
pub(crate) const USER_COUNTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("user_counts");

/// Key in `meta`: the half-life (ms) the stored recent usage is decayed with.
const HALF_LIFE_KEY: &str = "usage_half_life_ms";

/// What a user has used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct UsageRecord {
    /// Recent usage (decayed) of the attempts that ended (kept in [`STANDINGS`]).
    #[serde(skip)]
    pub recent: Decayed,
    /// Worker milliseconds of every attempt that ended, ever.
    #[serde(default)]
    pub total_worker_ms: u64,
    /// GPU milliseconds of every attempt that ended, ever.
    #[serde(default)]
    pub total_gpu_ms: u64,
    /// Attempts that ended.
    #[serde(default)]
    pub attempts: u64,
}

/// A user's live counts (kept by `save_job`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    pub queued: u64,
    pub running: u64,
    /// Sum of the running jobs' start times (ms).
    pub running_since: u64,
    /// GPUs the running jobs asked for.
    pub running_gpus: u64,
    /// Sum of start time × GPUs of the running jobs.
    pub running_gpu_since: u64,
}

/// One user's row of [`STANDINGS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StandingRow {
    pub share: f64,
    pub max_running: Option<u64>,
    /// Recent usage of the attempts that ended, decayed.
    pub recent: Decayed,
    pub running: u64,
    /// Sum of the running jobs' start times (ms).
    pub running_since: u64,
}

/// A row of [`STANDINGS`] as stored (see there).
pub(crate) type StandingTuple = (f64, u64, f64, f64, u64, u64, u64);

impl StandingRow {
    /// The row of a user without one: their record's share and limit, nothing used.
    fn new(user: Option<&UserInfo>) -> StandingRow {
        StandingRow {
            share: user.map_or(1.0, |u| u.share),
            max_running: user.and_then(|u| u.max_running),
            recent: Decayed::default(),
            running: 0,
            running_since: 0,
        }
    }

    fn from_tuple(t: StandingTuple) -> StandingRow {
        StandingRow {
            share: t.0,
            max_running: (t.1 > 0).then_some(t.1),
            recent: Decayed {
                worker_s: t.2,
                gpu_s: t.3,
                at: t.4,
            },
            running: t.5,
            running_since: t.6,
        }
    }

    fn tuple(&self) -> StandingTuple {
        (
            self.share,
            self.max_running.unwrap_or(0),
            self.recent.worker_s,
            self.recent.gpu_s,
            self.recent.at,
            self.running,
            self.running_since,
        )
    }

    /// What fair share compares.
    pub fn standing(&self) -> fairshare::Standing {
        fairshare::Standing {
            share: self.share,
            recent: self.recent,
            running: self.running,
            running_since_sum: self.running_since,
        }
    }

    /// Whether the user runs as many jobs as their limit allows.
    pub fn at_running_limit(&self) -> bool {
        self.max_running.is_some_and(|m| self.running >= m)
    }
}

fn decode_user(bytes: &[u8]) -> Result<UserInfo, StoreError> {
    from_json("user", bytes)
}

fn decode_usage(bytes: &[u8]) -> Result<UsageRecord, StoreError> {
    from_json("usage", bytes)
}

/// The half-life stored in `meta` (the default when none is).
fn half_life_of(ms: Option<u64>) -> Duration {
    ms.filter(|&ms| ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(fairshare::DEFAULT_HALF_LIFE)
}

impl Tx<'_> {
    /// A user's record (None for a user without one: share 1, no limits).
    pub fn user(&mut self, name: &str) -> Result<Option<UserInfo>, StoreError> {
        self.users
            .open()?
            .get(name)?
            .map(|v| decode_user(v.value()))
            .transpose()
    }

    /// Stores a user's record (new or changed), after checking it.
    pub fn save_user(&mut self, user: &UserInfo) -> Result<(), Error> {
        user.validate()?;
        self.users
            .open_mut()?
            .insert(user.name.as_str(), to_json(user).as_slice())
            .map_err(StoreError::from)?;
        let (share, max) = (user.share, user.max_running);
        self.with_standing(&user.name, |row| {
            row.share = share;
            row.max_running = max;
        })?;
        Ok(())
    }

    /// Removes a user's record; false if there was none. Their jobs keep their owner (with the
    /// defaults: share 1, no limits).
    pub fn delete_user(&mut self, name: &str) -> Result<bool, StoreError> {
        let removed = self.users.open_mut()?.remove(name)?.is_some();
        self.with_standing(name, |row| {
            row.share = 1.0;
            row.max_running = None;
        })?;
        Ok(removed)
    }

    /// A user's row of [`STANDINGS`] (the defaults of their record if they have none yet).
    pub fn standing_row(&mut self, user: &str) -> Result<StandingRow, StoreError> {
        let stored = self.standings.open()?.get(user)?.map(|v| v.value());
        match stored {
            Some(t) => Ok(StandingRow::from_tuple(t)),
            None => Ok(StandingRow::new(self.user(user)?.as_ref())),
        }
    }

    /// The rows of [`STANDINGS`] of `users` (sorted by name, as the per-user indexes are), in
    /// one ordered pass over the range they span rather than a lookup each.
    pub(crate) fn standing_rows(&mut self, users: &[&str]) -> Result<Vec<StandingRow>, StoreError> {
        let mut found: Vec<Option<StandingRow>> = Vec::with_capacity(users.len());
        if let (Some(&first), Some(&last)) = (users.first(), users.last()) {
            let mut it = self.standings.open()?.range(first..=last)?;
            let mut next = it.next().transpose()?;
            for &user in users {
                while next.as_ref().is_some_and(|(k, _)| k.value() < user) {
                    next = it.next().transpose()?;
                }
                found.push(match &next {
                    Some((k, v)) if k.value() == user => Some(StandingRow::from_tuple(v.value())),
                    _ => None,
                });
            }
        }
        // Users without a row yet: their record's share and limit.
        users
            .iter()
            .zip(found)
            .map(|(user, row)| match row {
                Some(r) => Ok(r),
                None => Ok(StandingRow::new(self.user(user)?.as_ref())),
            })
            .collect()
    }

    /// Changes a user's row of [`STANDINGS`].
    fn with_standing(
        &mut self,
        user: &str,
        f: impl FnOnce(&mut StandingRow),
    ) -> Result<(), StoreError> {
        let mut row = self.standing_row(user)?;
        f(&mut row);
        self.standings.open_mut()?.insert(user, row.tuple())?;
        Ok(())
    }

    /// Sets a user's recent usage (the decayed sum of the attempts that ended).
    pub(crate) fn set_recent_usage(
        &mut self,
        user: &str,
        recent: Decayed,
    ) -> Result<(), StoreError> {
        self.with_standing(user, |row| row.recent = recent)
    }

    /// A user's live counts.
    pub fn user_counts(&mut self, user: &str) -> Result<UserCounts, StoreError> {
        let row = self.standing_row(user)?;
        counts_of(self.user_counts.open()?, &row, user)
    }

    /// A user's usage: totals, and recent usage.
    pub fn usage_record(&mut self, user: &str) -> Result<UsageRecord, StoreError> {
        let mut rec = self.stored_usage(user)?;
        rec.recent = self.standing_row(user)?.recent;
        Ok(rec)
    }

    /// A user's usage record as stored (its recent usage may be older than their standing's).
    fn stored_usage(&mut self, user: &str) -> Result<UsageRecord, StoreError> {
        Ok(self
            .usage
            .open()?
            .get(user)?
            .map(|v| decode_usage(v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Refuses, with nothing written, a submission of `adding` jobs that would take `user`
    /// past their queued limit: 429 with the limit and the count.
    pub fn check_queued_limit(&mut self, user: &str, adding: u64) -> Result<(), Error> {
        let Some(max) = self.user(user)?.and_then(|u| u.max_queued) else {
            return Ok(());
        };
        let queued = self.user_counts(user)?.queued;
        if queued.saturating_add(adding) > max {
            return Err(RequestError::Quota(format!(
                "user {user} may have at most {} queued and has {queued}; this submission \
                 of {} would make {} (nothing was submitted; wait for some to start, or ask an \
                 admin: gaia user set {user} --max-queued N)",
                crate::human::plural(max, "job"),
                crate::human::plural(adding, "job"),
                queued.saturating_add(adding)
            ))
            .into());
        }
        Ok(())
    }

    /// Whether `user` runs as many jobs as their limit allows (their queued jobs then wait).
    pub fn at_running_limit(&mut self, user: &str) -> Result<bool, StoreError> {
        Ok(self.standing_row(user)?.at_running_limit())
    }

    fn add_count(&mut self, user: &str, what: &'static str, delta: i128) -> Result<(), StoreError> {
        let n = self.user_counts.count((user, what))?;
        // Sums of start times are added and taken away exactly; wrapping keeps them exact
        // modulo 2^64 whatever order that happens in.
        let next = (n as i128 + delta).rem_euclid(1 << 64) as u64;
        if next == 0 {
            self.user_counts.open_mut()?.remove((user, what))?;
        } else {
            self.user_counts.open_mut()?.insert((user, what), next)?;
        }
        Ok(())
    }

    /// Keeps the owner's counts and usage in step with one job's change (`prev` as it was
    /// stored, None for a new job); charges the attempt that ended, if one did. What it reads
    /// that can fail to decode is read before its first write, so [`Tx::save_job`], which calls
    /// it first, refuses a change whole. A usage record that does not decode (the owner's
    /// totals, shown by `gaia usage`) does not stop a job from ending: it is left as it is for
    /// `gaia db check` to report, this attempt is not added to it, and an event says so.
    pub(crate) fn account_job(&mut self, prev: Option<&Job>, job: &Job) -> Result<(), StoreError> {
        let was_running = prev.filter(|p| p.state == JobState::Running);
        let same_attempt = was_running.is_some_and(|p| p.attempt == job.attempt);
        let running = job.state == JobState::Running;
        let ended = was_running.filter(|_| !(running && same_attempt));
        let started = running && !same_attempt;
        let user = job.owner.as_str();
        let mut standing = if ended.is_some() || started {
            Some(self.standing_row(user)?)
        } else {
            None
        };
        let usage = match ended.map(|_| self.stored_usage(user)) {
            Some(Ok(rec)) => Some(Ok(rec)),
            Some(Err(e @ StoreError::Corrupt { .. })) => Some(Err(e)),
            Some(Err(e)) => return Err(e),
            None => None,
        };
        // Writes from here on.
        let was_queued = prev.is_some_and(|p| p.state == JobState::Queued);
        let queued = job.state == JobState::Queued;
        if was_queued && !queued {
            self.add_count(user, "queued", -1)?;
        } else if queued && !was_queued {
            self.add_count(user, "queued", 1)?;
        }
        if let (Some(p), Some(row), Some(usage)) = (ended, standing.as_mut(), usage) {
            let now = now_ms();
            let start = p.started_at.unwrap_or(now);
            let gpus = p.spec.requirements.gpus as u64;
            let half_life = self.usage_half_life()?;
            self.stop_running(p, start, row)?;
            // The attempt's charge: recent usage, totals and the hourly history.
            let ms = now.saturating_sub(start);
            row.recent = row.recent.charge(
                ms as f64 / 1000.0,
                (ms * gpus) as f64 / 1000.0,
                now,
                half_life,
            );
            match usage {
                Ok(mut rec) => {
                    rec.total_worker_ms += ms;
                    rec.total_gpu_ms += ms * gpus;
                    rec.attempts += 1;
                    rec.recent = row.recent;
                    self.usage
                        .open_mut()?
                        .insert(user, to_json(&rec).as_slice())?;
                }
                Err(e) => {
                    self.event(
                        "usage_not_recorded",
                        Some(job.id),
                        None,
                        format!(
                            "job {}: its attempt was not added to {user}'s usage totals: {e} \
                             (`gaia db check` lists the records that do not decode)",
                            job.id
                        ),
                    )?;
                }
            }
            self.add_hours(user, start, now, gpus)?;
        }
        if started && let Some(row) = standing.as_mut() {
            let start = job.started_at.unwrap_or_else(now_ms);
            self.start_running(job, start, row)?;
        }
        if let Some(row) = standing {
            self.standings.open_mut()?.insert(user, row.tuple())?;
        }
        Ok(())
    }

    fn start_running(
        &mut self,
        job: &Job,
        start: Millis,
        row: &mut StandingRow,
    ) -> Result<(), StoreError> {
        row.running += 1;
        row.running_since = row.running_since.wrapping_add(start);
        let gpus = job.spec.requirements.gpus as i128;
        if gpus > 0 {
            self.add_count(&job.owner, "running_gpus", gpus)?;
            self.add_count(&job.owner, "running_gpu_since", start as i128 * gpus)?;
        }
        Ok(())
    }

    fn stop_running(
        &mut self,
        job: &Job,
        start: Millis,
        row: &mut StandingRow,
    ) -> Result<(), StoreError> {
        row.running = row.running.saturating_sub(1);
        row.running_since = row.running_since.wrapping_sub(start);
        let gpus = job.spec.requirements.gpus as i128;
        if gpus > 0 {
            self.add_count(&job.owner, "running_gpus", -gpus)?;
            self.add_count(&job.owner, "running_gpu_since", -(start as i128 * gpus))?;
        }
        Ok(())
    }

    /// The half-life recent usage is decayed with (stored, so that every write agrees).
    pub fn usage_half_life(&mut self) -> Result<Duration, StoreError> {
        Ok(half_life_of(
            self.meta.open()?.get(HALF_LIFE_KEY)?.map(|v| v.value()),
        ))
    }

    fn add_hours(
        &mut self,
        user: &str,
        start: Millis,
        end: Millis,
        gpus: u64,
    ) -> Result<(), StoreError> {
        for (hour, ms) in fairshare::hour_spans(start, end) {
            let (w, g) = self
                .usage_hours
                .open()?
                .get((user, hour))?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            self.usage_hours
                .open_mut()?
                .insert((user, hour), (w + ms, g + ms * gpus))?;
        }
        Ok(())
    }

    /// Makes `half_life` the one recent usage decays with. When it differs from the stored
    /// one, every user's recent usage is rebuilt from the hourly history with it, so a changed
    /// setting takes effect on the past too.
    pub fn set_usage_half_life(&mut self, half_life: Duration) -> Result<(), StoreError> {
        let ms = half_life.as_millis().max(1) as u64;
        if self.meta.open()?.get(HALF_LIFE_KEY)?.map(|v| v.value()) == Some(ms) {
            return Ok(());
        }
        self.meta.open_mut()?.insert(HALF_LIFE_KEY, ms)?;
        self.rebuild_recent_usage()
    }

    /// Recomputes every user's recent usage from the hourly history.
    pub(crate) fn rebuild_recent_usage(&mut self) -> Result<(), StoreError> {
        let half_life = self.usage_half_life()?;
        let now = now_ms();
        // (hour, worker ms, GPU ms) of each user, in key order.
        type Hours = Vec<(u64, u64, u64)>;
        let mut per_user: Vec<(String, Hours)> = Vec::new();
        for entry in self.usage_hours.open()?.iter()? {
            let (k, v) = entry?;
            let (user, hour) = k.value();
            let (w, g) = v.value();
            match per_user.last_mut() {
                Some((u, hours)) if u == user => hours.push((hour, w, g)),
                _ => per_user.push((user.to_string(), vec![(hour, w, g)])),
            }
        }
        for (user, hours) in per_user {
            self.set_recent_usage(&user, fairshare::decayed_from_hours(hours, now, half_life))?;
        }
        Ok(())
    }

    /// Schema 1 → 2: every job gets its owner's indexes and counts (jobs stored without an
    /// owner belong to the admin), and the attempts that ended are entered into the usage
    /// history, so fair share and `gaia usage` know the past.
    pub(crate) fn migrate_to_v2(&mut self) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        for entry in self.jobs.open()?.iter()? {
            ids.push(entry?.0.value());
        }
        for id in ids {
            // A job that does not decode (written by a newer build) is left as it is.
            let Ok(Some(job)) = self.job(id) else {
                continue;
            };
            self.index_new_job(&job)?;
            if job.state == JobState::Queued {
                self.index_queued(&job)?;
            }
            self.account_job(None, &job)?;
            let gpus = job.spec.requirements.gpus as u64;
            let mut rec = self.usage_record(&job.owner)?;
            for a in &job.attempts {
                let Some(end) = a.ended_at else { continue };
                let ms = end.saturating_sub(a.started_at);
                rec.total_worker_ms += ms;
                rec.total_gpu_ms += ms * gpus;
                rec.attempts += 1;
                self.add_hours(&job.owner, a.started_at, end, gpus)?;
            }
            if rec.attempts > 0 {
                self.usage
                    .open_mut()?
                    .insert(job.owner.as_str(), to_json(&rec).as_slice())?;
            }
        }
        self.rebuild_recent_usage()
    }
}

impl Reader {
    /// A user's record.
    pub fn user(&self, name: &str) -> Result<Option<UserInfo>, StoreError> {
        self.users
            .open()?
            .get(name)?
            .map(|v| decode_user(v.value()))
            .transpose()
    }

    /// Every stored user, by name. The admin user is listed only once it has a record.
    pub fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let mut out = Vec::new();
        for entry in self.users.open()?.iter()? {
            out.push(decode_user(entry?.1.value())?);
        }
        Ok(out)
    }

    /// A user's record, or the defaults for one without (the admin, or a user whose record
    /// was removed while their jobs remain).
    pub fn user_or_default(&self, name: &str) -> Result<UserInfo, StoreError> {
        Ok(self.user(name)?.unwrap_or_else(|| UserInfo::new(name, 0)))
    }

    /// A user's row of [`STANDINGS`] (the defaults of their record if they have none yet).
    pub fn standing_row(&self, user: &str) -> Result<StandingRow, StoreError> {
        match self.standings.open()?.get(user)?.map(|v| v.value()) {
            Some(t) => Ok(StandingRow::from_tuple(t)),
            None => Ok(StandingRow::new(self.user(user)?.as_ref())),
        }
    }

    /// A user's live counts.
    pub fn user_counts(&self, user: &str) -> Result<UserCounts, StoreError> {
        counts_of(self.user_counts.open()?, &self.standing_row(user)?, user)
    }

    /// A user's usage: totals, and recent usage.
    pub fn usage_record(&self, user: &str) -> Result<UsageRecord, StoreError> {
        let mut rec: UsageRecord = self
            .usage
            .open()?
            .get(user)?
            .map(|v| decode_usage(v.value()))
            .transpose()?
            .unwrap_or_default();
        rec.recent = self.standing_row(user)?.recent;
        Ok(rec)
    }

    /// Worker and GPU milliseconds `user` used in the hours from the one holding `since` on
    /// (attempts that ended; hourly resolution).
    pub fn usage_since(&self, user: &str, since: Millis) -> Result<(u64, u64), StoreError> {
        let from = since / fairshare::HOUR_MS;
        let (mut w, mut g) = (0, 0);
        for entry in self
            .usage_hours
            .open()?
            .range((user, from)..=(user, u64::MAX))?
        {
            let (dw, dg) = entry?.1.value();
            w += dw;
            g += dg;
        }
        Ok((w, g))
    }

    /// Every user who has a record, jobs, or usage: sorted, the admin included when it has any.
    pub fn known_users(&self) -> Result<Vec<String>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for entry in self.users.open()?.iter()? {
            names.insert(entry?.0.value().to_string());
        }
        for entry in self.usage.open()?.iter()? {
            names.insert(entry?.0.value().to_string());
        }
        for entry in self.user_counts.open()?.iter()? {
            names.insert(entry?.0.value().0.to_string());
        }
        for entry in self.standings.open()?.iter()? {
            let (k, v) = entry?;
            // A row only ever touched by a share: a user without jobs has their record.
            if v.value().5 > 0 || v.value().2 > 0.0 {
                names.insert(k.value().to_string());
            }
        }
        if names.is_empty() {
            names.insert(ADMIN_USER.to_string());
        }
        Ok(names.into_iter().collect())
    }
}

/// A user's live counts from their standing row and their [`USER_COUNTS`] entries (the same
/// for a write transaction and a snapshot).
fn counts_of(
    table: &impl ReadableTable<(&'static str, &'static str), u64>,
    row: &StandingRow,
    user: &str,
) -> Result<UserCounts, StoreError> {
    let get = |what: &str| -> Result<u64, StoreError> {
        Ok(table.get((user, what))?.map(|v| v.value()).unwrap_or(0))
    };
    Ok(UserCounts {
        queued: get("queued")?,
        running: row.running,
        running_since: row.running_since,
        running_gpus: get("running_gpus")?,
        running_gpu_since: get("running_gpu_since")?,
    })
}
