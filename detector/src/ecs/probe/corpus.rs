//! Every rule of Elastic's Linux corpus: whatever the lineage and snapshot probes say of a
//! rule is its result on the built document, and an event whose probe the rule set (index
//! and verdict cache included) rules out matches no rule. Over synthetic snapshots whose
//! values are half of the time the corpus's own literals (so rules do match).

use super::tests::{builder, snapshots_from};
use crate::rules::{RuleSet, VerdictCache};
use crate::testsupport::{Corpus, Need, corpus, require};

/// For each rule, the quoted literals of its query, with and without their wildcards, and
/// paths built from them: values that make its tests true.
fn literals(set: &RuleSet) -> Vec<Vec<Vec<u8>>> {
    let mut pools = Vec::new();
    for r in set.rules() {
        let mut out = std::collections::BTreeSet::new();
        for (i, lit) in r.query.split('"').enumerate() {
            if i % 2 == 0 || lit.is_empty() || lit.len() > 80 {
                continue;
            }
            let bare: String = lit.chars().filter(|c| !matches!(c, '*' | '?')).collect();
            out.insert(bare.clone().into_bytes());
            out.insert(lit.replace('*', "x").into_bytes());
            out.insert(format!("/usr/bin/{bare}").into_bytes());
        }
        pools.push(out.into_iter().collect());
    }
    pools
}

#[test]
fn probes_agree_with_documents_for_every_corpus_rule() {
    if !require(
        "ecs::probe::corpus::probes_agree_with_documents_for_every_corpus_rule",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let (set, _) = RuleSet::load(&[corpus(Corpus::ElasticLinux)], crate::ecs::schema());
    assert!(set.len() > 200, "{} rules", set.len());
    let mut docs = builder();
    let snaps = snapshots_from(0xc0de, 30 * set.len(), literals(&set));
    let mut cache = VerdictCache::default();
    // Per rule: (matched, ruled out by the lineage probe).
    let mut seen = vec![(0usize, 0usize); set.len()];
    let (mut skipped, mut matched) = (0, 0);
    for snap in &snaps {
        let doc = docs.build(snap, None);
        let late = docs.probe(snap);
        let lineage = docs.lineage_probe(crate::process::Lineage::of(snap));
        let mut any = false;
        for (i, r) in set.rules().iter().enumerate() {
            let m = r.matches(&doc);
            any |= m;
            seen[i].0 += m as usize;
            if let Some(b) = r.compiled.root.eval3(&late) {
                assert_eq!(b, m, "{} (snapshot probe) on {snap:?}", r.meta.name);
            }
            if let Some(b) = r.compiled.root.eval3(&lineage) {
                assert_eq!(b, m, "{} (lineage probe) on {snap:?}", r.meta.name);
                seen[i].1 += !b as usize;
            }
        }
        let fresh = set.may_match_probe(&lineage);
        assert_eq!(
            set.may_match_cached(&lineage, &mut cache),
            fresh,
            "{snap:?}"
        );
        // Snapshot probes share the cache (their keys are apart from lineage probes').
        let late_fresh = set.may_match_probe(&late);
        assert_eq!(
            set.may_match_cached(&late, &mut cache),
            late_fresh,
            "{snap:?}"
        );
        assert!(
            fresh || !late_fresh,
            "the snapshot probe knows more: {snap:?}"
        );
        if any {
            matched += 1;
            assert!(fresh, "lineage probe skipped a match: {snap:?}");
            assert!(
                set.may_match_probe(&late),
                "snapshot probe skipped a match: {snap:?}"
            );
        }
        skipped += !fresh as usize;
    }
    // Not vacuous: rules matched, and were decided early.
    let fired = seen.iter().filter(|s| s.0 > 0).count();
    let early = seen.iter().filter(|s| s.1 > 0).count();
    eprintln!(
        "{} snapshots: {matched} match some rule, {skipped} skipped early; {fired} rules \
         matched, {early} decided false by the lineage probe, {} cache hits",
        snaps.len(),
        cache.hits()
    );
    assert!(fired >= 30, "{fired} rules matched");
    assert!(early * 10 >= set.len() * 9, "{early} rules decided early");
    assert!(matched > 100 && skipped > 100, "{matched} / {skipped}");
}
