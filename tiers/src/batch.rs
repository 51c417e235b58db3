//! Batches across the stack: `get_many`, `set_many`, `delete_many`. Each tier receives one call
//! per batch; fences, promotion and failure handling are those of the single-key operations.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use strata_tier::{Lookup, TierWrite};

use crate::cache::{expiry, failure, remaining, SetOptions, TieredCache, WriteTarget};
use crate::codec::Codec;
use crate::error::CacheError;
use crate::fence::WriteTicket;
use crate::read_path::Decoded;
use crate::reports::WriteReport;

pub(crate) async fn get_many<V, C>(cache: &TieredCache<V, C>, keys: &[&str]) -> Vec<Option<V>>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let shared = &*cache.shared;
    let mut out: Vec<Option<V>> = keys.iter().map(|key| shared.l1.get(*key)).collect();
    let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
    if missing.is_empty() {
        return out;
    }
    let tickets: Vec<_> = missing
        .iter()
        .map(|&i| shared.fences.begin_read(keys[i]))
        .collect();
    let mut answered = vec![vec![false; shared.layers.len()]; missing.len()];
    let mut pending: Vec<usize> = (0..missing.len()).collect();
    for (depth, layer) in shared.layers.iter().enumerate() {
        if pending.is_empty() {
            break;
        }
        let asked: Vec<&str> = pending.iter().map(|&m| keys[missing[m]]).collect();
        let answers = layer.get_many(&asked).await;
        let mut still = Vec::new();
        let mut found = Vec::new();
        for (&m, answer) in pending.iter().zip(answers) {
            let key = keys[missing[m]];
            match answer {
                Lookup::Hit(stored) => {
                    answered[m][depth] = true;
                    match cache.decode(stored, depth) {
                        Decoded::Hit(entry, stored) => found.push((m, entry, stored)),
                        Decoded::Expired => still.push(m),
                        Decoded::Corrupt(reason) => {
                            cache.drop_corrupt(layer, key, &reason).await;
                            still.push(m);
                        }
                    }
                }
                Lookup::Miss => {
                    answered[m][depth] = true;
                    still.push(m);
                }
                Lookup::Degraded(_) => still.push(m),
            }
        }
        // The top tier's hits have no tier above them to fill.
        let above_any = depth > 0;
        join_all(
            found
                .iter()
                .filter(|_| above_any)
                .map(|(m, entry, stored)| {
                    let above = shared.layers[..depth]
                        .iter()
                        .zip(&answered[*m])
                        .filter_map(|(layer, answered)| answered.then_some(layer));
                    cache.fill_tiers(
                        &tickets[*m],
                        keys[missing[*m]],
                        stored,
                        entry.expires_at,
                        above,
                    )
                }),
        )
        .await;
        for (m, entry, _) in found {
            shared.lower_hits.fetch_add(1, Relaxed);
            let key = keys[missing[m]];
            cache.fill_l1(&tickets[m], key, &entry.value, entry.expires_at);
            out[missing[m]] = Some(entry.value);
        }
        pending = still;
    }
    shared.misses.fetch_add(pending.len() as u64, Relaxed);
    out
}

/// Takes the write fences of `keys` in key order (so two batches never wait on each other in
/// a cycle), once per distinct key.
async fn write_fences<'a, V, C>(
    cache: &'a TieredCache<V, C>,
    keys: impl Iterator<Item = &'a str>,
) -> Vec<WriteTicket<'a>>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let distinct: std::collections::BTreeSet<&str> = keys.collect();
    let mut tickets = Vec::with_capacity(distinct.len());
    for key in distinct {
        tickets.push(cache.shared.fences.begin_write(key).await);
        cache.shared.flights.detach(key);
    }
    tickets
}

pub(crate) async fn set_many<V, C>(
    cache: &TieredCache<V, C>,
    entries: Vec<(String, V)>,
    options: SetOptions,
) -> Result<Vec<WriteReport>, CacheError>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let shared = &*cache.shared;
    let ttl = options.ttl_or(shared.default_ttl);
    let expires_at = expiry(ttl, SystemTime::now());
    let frames = entries
        .iter()
        .map(|(_, value)| cache.frame_value(value, expires_at))
        .collect::<Result<Vec<_>, _>>()?;
    // A key given twice: the last occurrence is the one written.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (key, _)) in entries.iter().enumerate() {
        last.insert(key, i);
    }
    let tickets = write_fences(cache, last.keys().copied()).await;
    let target = options.target_of();
    let mut l1_error = None;
    for &i in last.values() {
        let (key, value) = &entries[i];
        if target == WriteTarget::SkipL1 {
            shared.l1.remove(key.as_str());
        } else if let Err(error) = cache.insert_l1(key.clone(), value.clone(), expires_at) {
            l1_error.get_or_insert(error);
        }
    }
    let written: Vec<usize> = last.values().copied().collect();
    let mut per_entry: Vec<WriteReport> =
        (0..written.len()).map(|_| WriteReport::default()).collect();
    if target != WriteTarget::L1Only && l1_error.is_none() {
        let left =
            remaining(expires_at, SystemTime::now()).unwrap_or(Some(Duration::from_millis(1)));
        let results = join_all(shared.layers.iter().map(|layer| {
            let writes = written
                .iter()
                .map(|&i| {
                    TierWrite::update(entries[i].0.clone(), frames[i].clone(), layer.ttl_for(left))
                })
                .collect();
            layer.set_many(writes)
        }))
        .await;
        for (layer, results) in shared.layers.iter().zip(results) {
            for (report, result) in per_entry.iter_mut().zip(results) {
                match result {
                    Ok(_) => report.written.push(layer.name().to_owned()),
                    Err(error) => report.failed.push(failure(layer, error)),
                }
            }
        }
    }
    for (ticket, key) in tickets.into_iter().zip(last.keys()) {
        if !ticket.finish().await {
            cache.fills_unsettled(key);
        }
    }
    for &i in last.values() {
        shared.flights.detach(&entries[i].0);
    }
    if let Some(error) = l1_error {
        return Err(error);
    }
    // Reports in the order given; an earlier duplicate shares its key's outcome.
    let mut reports: Vec<Option<WriteReport>> = entries.iter().map(|_| None).collect();
    for (&i, report) in written.iter().zip(per_entry) {
        reports[i] = Some(report);
    }
    for (i, (key, _)) in entries.iter().enumerate() {
        if reports[i].is_none() {
            let shown = reports[last[key.as_str()]].as_ref().map(copy_report);
            reports[i] = shown;
        }
    }
    Ok(reports.into_iter().map(Option::unwrap_or_default).collect())
}

/// A report for an earlier duplicate of a key (tier errors are not `Clone`: their text is
/// kept).
fn copy_report(report: &WriteReport) -> WriteReport {
    WriteReport {
        written: report.written.clone(),
        failed: report
            .failed
            .iter()
            .map(|f| crate::error::TierFailure {
                tier: f.tier.clone(),
                error: strata_tier::TierError::Unavailable(f.error.to_string()),
            })
            .collect(),
    }
}

pub(crate) async fn delete_many<V, C>(
    cache: &TieredCache<V, C>,
    keys: &[&str],
) -> Result<u64, CacheError>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    let shared = &*cache.shared;
    let tickets = write_fences(cache, keys.iter().copied()).await;
    let distinct: Vec<&str> = {
        let set: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        set.into_iter().collect()
    };
    let mut found = vec![false; distinct.len()];
    for (key, found) in distinct.iter().zip(found.iter_mut()) {
        *found = shared.l1.remove(*key).is_some();
    }
    let results = join_all(
        shared
            .layers
            .iter()
            .map(|layer| layer.delete_many(&distinct)),
    )
    .await;
    for (ticket, key) in tickets.into_iter().zip(&distinct) {
        if !ticket.finish().await {
            cache.fills_unsettled(key);
        }
    }
    // As in `delete`: a load that began during the delete may have read an old value.
    for key in &distinct {
        shared.flights.detach(key);
    }
    let mut failures = Vec::new();
    for (layer, results) in shared.layers.iter().zip(results) {
        for (key, (found, result)) in distinct.iter().zip(found.iter_mut().zip(results)) {
            match result {
                Ok(removed) => *found |= removed,
                Err(error) => failures.push(crate::error::TierFailure {
                    tier: format!("{} ({key})", layer.name()),
                    error,
                }),
            }
        }
    }
    if failures.is_empty() {
        Ok(found.iter().filter(|f| **f).count() as u64)
    } else {
        Err(CacheError::Invalidation(failures))
    }
}
