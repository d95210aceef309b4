//! The four consumer-group assignors of the classic protocol (KA-1..KA-15), as pure functions
//! of the group's subscriptions. They follow the Java client step by step, including the
//! orders it depends on: members sorted as `MemberInfo` sorts them (KA-1), and the sticky
//! assignors' walk over a `java.util.HashMap` (KA-14), which we emulate. One order we cannot
//! emulate and do not need to: where Java takes "any" element of a `HashSet` of partitions
//! (moving a partition back along a recorded movement, KA-11), we take the smallest.

use super::{java_cmp, java_hashmap_order};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A string ordered as Java orders strings (UTF-16 code units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JStr(pub String);

impl Ord for JStr {
    fn cmp(&self, other: &Self) -> Ordering {
        java_cmp(&self.0, &other.0)
    }
}
impl PartialOrd for JStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A topic partition, ordered by (topic, partition) as Java's comparators order them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: JStr,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition { topic: JStr(topic.to_string()), partition }
    }

    /// Parses `"<topic>-<partition>"`, splitting at the last dash.
    pub fn parse(s: &str) -> Option<TopicPartition> {
        let (topic, partition) = s.rsplit_once('-')?;
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic.0, self.partition)
    }
}

/// No generation (`DEFAULT_GENERATION`).
pub const NO_GENERATION: i32 = -1;

/// One member's subscription, as the group leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// `group.instance.id`: a static member (KA-1).
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
    /// What it owned before this rebalance (sticky assignors only, KA-7).
    pub owned: Vec<TopicPartition>,
    /// The generation it owned them in; `NO_GENERATION` when none.
    pub generation: i32,
}

impl Member {
    fn subscribes(&self, topic: &JStr) -> bool {
        self.topics.contains(&topic.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignor {
    Range,
    RoundRobin,
    Sticky,
    CooperativeSticky,
}

impl Assignor {
    pub const ALL: [Assignor; 4] =
        [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky, Assignor::CooperativeSticky];

    /// The name Kafka's `partition.assignment.strategy` documentation uses.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    pub fn from_name(name: &str) -> Option<Assignor> {
        Assignor::ALL.into_iter().find(|a| a.name() == name)
    }

    /// KC-1, KC-2: only cooperative-sticky supports incremental rebalancing.
    pub fn cooperative(self) -> bool {
        self == Assignor::CooperativeSticky
    }
}

/// Each member's partitions, for every member (possibly empty), in the order the assignor
/// produced them.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// One round of `assignor` over `members` (in the order they joined), for topics with the
/// given partition counts. Topics nobody subscribes to, and subscribed topics without a count,
/// are ignored, as Kafka ignores topics without metadata.
pub fn assign(assignor: Assignor, partitions_per_topic: &BTreeMap<String, u32>, members: &[Member]) -> Assignment {
    let topics = subscribed_topics(partitions_per_topic, members);
    match assignor {
        Assignor::Range => range(&topics, members),
        Assignor::RoundRobin => round_robin(&topics, members),
        Assignor::Sticky => sticky(&topics, members).0,
        Assignor::CooperativeSticky => cooperative_sticky(&topics, members),
    }
}

/// Cooperative-sticky to convergence, as the Java tests drive it (KA-12): the first round
/// withholds partitions that change owner; while any partition is withheld, another round runs
/// with every member owning what the previous round gave it (generation 1). Returns the first
/// round and the converged assignment.
pub fn cooperative_converge(
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[Member],
) -> (Assignment, Assignment) {
    let topics = subscribed_topics(partitions_per_topic, members);
    let total: usize = topics.values().map(|&n| n as usize).sum();
    let first = cooperative_sticky(&topics, members);
    let mut current = first.clone();
    // A follow-up round hands out everything withheld before, so one normally suffices; the
    // bound only guards against a mistake turning into a hang.
    for _ in 0..8 {
        if current.values().map(Vec::len).sum::<usize>() == total {
            break;
        }
        let next_members: Vec<Member> = members
            .iter()
            .map(|m| Member { owned: current.get(&m.id).cloned().unwrap_or_default(), generation: 1, ..m.clone() })
            .collect();
        current = cooperative_sticky(&topics, &next_members);
    }
    (first, current)
}

type Topics = BTreeMap<JStr, u32>;

fn subscribed_topics(partitions_per_topic: &BTreeMap<String, u32>, members: &[Member]) -> Topics {
    partitions_per_topic
        .iter()
        .filter(|(topic, _)| members.iter().any(|m| m.topics.iter().any(|t| t == *topic)))
        .map(|(topic, &n)| (JStr(topic.clone()), n))
        .collect()
}

fn empty_assignment(members: &[Member]) -> Assignment {
    members.iter().map(|m| (m.id.clone(), Vec::new())).collect()
}

/// KA-1: static members first, by instance id; then dynamic members, by member id.
fn member_info_cmp(a: &Member, b: &Member) -> Ordering {
    match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_cmp(&a.id, &b.id),
    }
}

fn sorted_members(members: &[Member]) -> Vec<&Member> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| member_info_cmp(a, b));
    sorted
}

/// KA-2, KA-3: per topic, contiguous ranges over the sorted subscribers, the first `n mod k`
/// getting one more.
fn range(topics: &Topics, members: &[Member]) -> Assignment {
    let mut out = empty_assignment(members);
    let sorted = sorted_members(members);
    for (topic, &n) in topics {
        let subscribers: Vec<&&Member> = sorted.iter().filter(|m| m.subscribes(topic)).collect();
        let k = u32::try_from(subscribers.len()).unwrap_or(u32::MAX);
        if k == 0 {
            continue;
        }
        let (q, r) = (n / k, n % k);
        for (i, m) in (0u32..).zip(subscribers) {
            let start = q * i + i.min(r);
            let len = q + u32::from(i < r);
            let list = out.entry(m.id.clone()).or_default();
            list.extend((start..start + len).map(|p| TopicPartition { topic: topic.clone(), partition: p }));
        }
    }
    out
}

/// KA-5: topics in order, partitions ascending, a circular iterator over the sorted members
/// that skips those not subscribed to the partition's topic.
fn round_robin(topics: &Topics, members: &[Member]) -> Assignment {
    let mut out = empty_assignment(members);
    let sorted = sorted_members(members);
    let mut at = 0;
    for (topic, &n) in topics {
        for partition in 0..n {
            // Some member subscribes to every topic in `topics`, so this stops.
            while !sorted[at].subscribes(topic) {
                at = (at + 1) % sorted.len();
            }
            out.entry(sorted[at].id.clone()).or_default().push(TopicPartition { topic: topic.clone(), partition });
            at = (at + 1) % sorted.len();
        }
    }
    out
}

/// What the sticky core hands the cooperative adjustment: partitions moving to a new owner,
/// computed by the constrained builder, or `None` after the general one (KA-12).
type Transfers = Option<BTreeMap<TopicPartition, String>>;

/// KA-12: the sticky assignment minus every partition that changes owner in this round.
fn cooperative_sticky(topics: &Topics, members: &[Member]) -> Assignment {
    let (mut out, transfers) = sticky(topics, members);
    let transfers = transfers.unwrap_or_else(|| {
        // The general case: partitions added to one member that another one revoked.
        let mut added = BTreeMap::new();
        let mut revoked = BTreeSet::new();
        for m in members {
            let assigned = out.get(&m.id).map(Vec::as_slice).unwrap_or_default();
            for tp in assigned.iter().filter(|tp| !m.owned.contains(tp)) {
                added.insert(tp.clone(), m.id.clone());
            }
            revoked.extend(m.owned.iter().filter(|tp| !assigned.contains(tp)).cloned());
        }
        added.retain(|tp, _| revoked.contains(tp));
        added
    });
    for (tp, member) in &transfers {
        if let Some(list) = out.get_mut(member) {
            if let Some(i) = list.iter().position(|x| x == tp) {
                list.remove(i);
            }
        }
    }
    out
}

/// The sticky core (`AbstractStickyAssignor.assignPartitions`): validate the claims (KA-8),
/// then the constrained builder when every subscription is the same (KA-9, KA-10), or the
/// general one (KA-11).
fn sticky(topics: &Topics, members: &[Member]) -> (Assignment, Transfers) {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    // Java walks the `subscriptions` HashMap, and `consumerToOwnedPartitions`, built in that
    // walk, iterates the same way.
    let order = java_hashmap_order(&ids);
    let claims = validate_claims(topics, members, &order);
    // As Java checks it: the first non-empty subscription seen in the walk is the reference.
    let mut reference: BTreeSet<&str> = BTreeSet::new();
    let mut all_equal = true;
    for &i in &order {
        let topics = &members[i].topics;
        if reference.is_empty() {
            reference.extend(topics.iter().map(String::as_str));
        } else if topics.len() != reference.len() || !topics.iter().all(|t| reference.contains(t.as_str())) {
            all_equal = false;
        }
    }
    if all_equal && !members.is_empty() {
        let (assignment, transfers) = constrained(topics, members, &order, &claims);
        (assignment, Some(transfers))
    } else {
        (general(topics, members, &order, claims.owned), None)
    }
}

struct Claims {
    /// Each member's valid owned partitions, in the order it listed them.
    owned: BTreeMap<String, Vec<TopicPartition>>,
    /// Claimed by two members of the same generation: taken from both (KA-8).
    multiply_claimed: BTreeSet<TopicPartition>,
}

/// `allSubscriptionsEqual`'s claim validation (KA-8), in the HashMap's order.
fn validate_claims(topics: &Topics, members: &[Member], order: &[usize]) -> Claims {
    let mut owned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let mut multiply_claimed = BTreeSet::new();
    let mut owner_of: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for &i in order {
        let m = &members[i];
        owned.entry(m.id.clone()).or_default();
        for tp in m.owned.iter().filter(|tp| topics.contains_key(&tp.topic)) {
            match owner_of.get(tp).copied() {
                None => {
                    owned.entry(m.id.clone()).or_default().push(tp.clone());
                    owner_of.insert(tp.clone(), i);
                }
                Some(other) => {
                    let other_generation = members[other].generation;
                    if m.generation >= other_generation {
                        if let Some(list) = owned.get_mut(&members[other].id) {
                            list.retain(|x| x != tp);
                        }
                        owner_of.insert(tp.clone(), i);
                        if m.generation == other_generation {
                            multiply_claimed.insert(tp.clone());
                        } else {
                            owned.entry(m.id.clone()).or_default().push(tp.clone());
                        }
                    }
                }
            }
        }
    }
    Claims { owned, multiply_claimed }
}

/// `ConstrainedAssignmentBuilder` without racks (KA-10).
// long: a port of Kafka's AbstractStickyAssignor.constrainedAssign, step for step, to be read beside the Java
fn constrained(
    topics: &Topics,
    members: &[Member],
    order: &[usize],
    claims: &Claims,
) -> (Assignment, BTreeMap<TopicPartition, String>) {
    let total: u32 = topics.values().sum();
    let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
    let (min_quota, max_quota) = (total / n, total.div_ceil(n));
    let expected_over_min = total % n;
    let mut current_over_min = 0;
    let mut assignment = empty_assignment(members);
    let mut assigned = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    let mut under_min: Vec<String> = Vec::new();
    let mut exactly_min: Vec<String> = Vec::new();
    for &i in order {
        let id = &members[i].id;
        let mut owned: Vec<TopicPartition> = claims.owned.get(id).cloned().unwrap_or_default();
        owned.sort_by(|a, b| a.partition.cmp(&b.partition).then_with(|| a.topic.cmp(&b.topic)));
        owned.retain(|tp| !claims.multiply_claimed.contains(tp));
        let len = u32::try_from(owned.len()).unwrap_or(u32::MAX);
        let keep = if len < min_quota {
            under_min.push(id.clone());
            owned.len()
        } else if len >= max_quota && current_over_min < expected_over_min {
            current_over_min += 1;
            if current_over_min == expected_over_min {
                exactly_min.clear();
            }
            max_quota as usize
        } else {
            if current_over_min < expected_over_min {
                exactly_min.push(id.clone());
            }
            min_quota as usize
        };
        revoked.extend(owned.drain(keep..));
        assigned.extend(owned.iter().cloned());
        assignment.insert(id.clone(), owned);
    }
    let unassigned: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|(topic, &n)| (0..n).map(|p| TopicPartition { topic: topic.clone(), partition: p }))
        .filter(|tp| !assigned.contains(tp))
        .collect();
    under_min.sort_by(|a, b| java_cmp(a, b));
    exactly_min.sort_by(|a, b| java_cmp(a, b));

    // `assignRoundRobin`, with Java's iterator over the under-min list (it can remove the
    // member it last returned, and restarts from the front when it runs off the end).
    let mut transfers = BTreeMap::new();
    let mut cursor = 0;
    for tp in unassigned {
        let (member, from_iterator) = if cursor < under_min.len() {
            cursor += 1;
            (under_min[cursor - 1].clone(), true)
        } else if under_min.is_empty() {
            if exactly_min.is_empty() {
                // Java throws here; the quotas make it unreachable.
                break;
            }
            (exactly_min.remove(0), false)
        } else {
            cursor = 1;
            (under_min[0].clone(), true)
        };
        let list = assignment.entry(member.clone()).or_default();
        list.push(tp.clone());
        let count = u32::try_from(list.len()).unwrap_or(u32::MAX);
        if revoked.contains(&tp) || claims.multiply_claimed.contains(&tp) {
            transfers.insert(tp, member.clone());
        }
        if count == min_quota && from_iterator {
            cursor -= 1;
            under_min.remove(cursor);
            exactly_min.push(member);
        }
    }
    (assignment, transfers)
}

/// Where a partition was before, for the general builder: the owner with the highest older
/// generation (`prevAssignment`).
struct Previous {
    member: String,
    generation: i32,
}

/// `PartitionMovements`: which partitions moved between which members in this rebalance, so
/// that a partition moving back takes the place of one that moved the other way.
#[derive(Default)]
struct Movements {
    by_topic: BTreeMap<JStr, BTreeMap<(String, String), BTreeSet<TopicPartition>>>,
    moved: BTreeMap<TopicPartition, (String, String)>,
}

impl Movements {
    fn remove(&mut self, tp: &TopicPartition) -> Option<(String, String)> {
        let pair = self.moved.remove(tp)?;
        if let Some(pairs) = self.by_topic.get_mut(&tp.topic) {
            if let Some(set) = pairs.get_mut(&pair) {
                set.remove(tp);
                if set.is_empty() {
                    pairs.remove(&pair);
                }
            }
            if pairs.is_empty() {
                self.by_topic.remove(&tp.topic);
            }
        }
        Some(pair)
    }

    fn add(&mut self, tp: &TopicPartition, pair: (String, String)) {
        self.moved.insert(tp.clone(), pair.clone());
        self.by_topic.entry(tp.topic.clone()).or_default().entry(pair).or_default().insert(tp.clone());
    }

    fn record(&mut self, tp: &TopicPartition, old: &str, new: &str) {
        if let Some((src, _)) = self.remove(tp) {
            if src != new {
                self.add(tp, (src, new.to_string()));
            }
        } else {
            self.add(tp, (old.to_string(), new.to_string()));
        }
    }

    fn actual_partition_to_move(&self, tp: &TopicPartition, old: &str, new: &str) -> TopicPartition {
        let Some(pairs) = self.by_topic.get(&tp.topic) else { return tp.clone() };
        let old = self.moved.get(tp).map_or(old, |(src, _)| src.as_str());
        match pairs.get(&(new.to_string(), old.to_string())).and_then(|set| set.first()) {
            Some(back) => back.clone(),
            None => tp.clone(),
        }
    }
}

/// `GeneralAssignmentBuilder` without racks (KA-11).
struct General<'a> {
    topics: &'a Topics,
    /// Per topic, its subscribers in the HashMap's order.
    potential_consumers: BTreeMap<JStr, Vec<String>>,
    potential_topics: BTreeMap<String, Vec<JStr>>,
    current: BTreeMap<String, Vec<TopicPartition>>,
    owner: BTreeMap<TopicPartition, String>,
    movements: Movements,
    total: u32,
}

impl General<'_> {
    fn size(&self, member: &str) -> usize {
        self.current.get(member).map_or(0, Vec::len)
    }

    /// `sortedCurrentSubscriptions`: members by (partitions held, id).
    fn sorted(&self) -> Vec<String> {
        let mut members: Vec<String> = self.current.keys().cloned().collect();
        members.sort_by(|a, b| self.size(a).cmp(&self.size(b)).then_with(|| java_cmp(a, b)));
        members
    }

    fn max_assignment_size(&self, member: &str) -> usize {
        let topics = self.potential_topics.get(member).map(Vec::as_slice).unwrap_or_default();
        if topics.len() == self.topics.len() {
            self.total as usize
        } else {
            topics.iter().map(|t| self.topics.get(t).copied().unwrap_or(0) as usize).sum()
        }
    }

    fn subscribes(&self, member: &str, topic: &JStr) -> bool {
        self.potential_topics.get(member).is_some_and(|ts| ts.contains(topic))
    }

    fn is_balanced(&self) -> bool {
        let sorted = self.sorted();
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else { return true };
        if self.size(first) + 1 >= self.size(last) {
            return true;
        }
        for member in &sorted {
            let count = self.size(member);
            if count == self.max_assignment_size(member) {
                continue;
            }
            for topic in self.potential_topics.get(member).map(Vec::as_slice).unwrap_or_default() {
                for partition in 0..self.topics.get(topic).copied().unwrap_or(0) {
                    let tp = TopicPartition { topic: topic.clone(), partition };
                    if self.current.get(member).is_some_and(|l| l.contains(&tp)) {
                        continue;
                    }
                    // Java maps partitions to holders from the assignment itself here.
                    let holder = self.current.iter().find(|(_, l)| l.contains(&tp)).map(|(m, _)| m);
                    if holder.is_some_and(|other| count + 1 < self.size(other)) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn can_consumer_participate(&self, member: &str) -> bool {
        if self.size(member) < self.max_assignment_size(member) {
            return true;
        }
        self.current.get(member).is_some_and(|l| l.iter().any(|tp| self.can_topic_participate(&tp.topic)))
    }

    fn can_topic_participate(&self, topic: &JStr) -> bool {
        self.potential_consumers.get(topic).is_some_and(|c| c.len() >= 2)
    }

    fn move_partition(&mut self, tp: &TopicPartition, new: &str) {
        let Some(old) = self.owner.get(tp).cloned() else { return };
        let tp = self.movements.actual_partition_to_move(tp, &old, new);
        let Some(old) = self.owner.get(&tp).cloned() else { return };
        self.movements.record(&tp, &old, new);
        if let Some(list) = self.current.get_mut(&old) {
            if let Some(i) = list.iter().position(|x| *x == tp) {
                list.remove(i);
            }
        }
        self.current.entry(new.to_string()).or_default().push(tp.clone());
        self.owner.insert(tp, new.to_string());
    }

    fn perform_reassignments(
        &mut self,
        partitions: &[TopicPartition],
        previous: &BTreeMap<TopicPartition, Previous>,
    ) -> bool {
        let mut performed = false;
        loop {
            let mut modified = false;
            for tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let Some(consumer) = self.owner.get(tp).cloned() else { continue };
                if let Some(prev) = previous.get(tp).filter(|p| self.current.contains_key(&p.member)) {
                    if self.size(&consumer) > self.size(&prev.member) + 1 {
                        let to = prev.member.clone();
                        self.move_partition(tp, &to);
                        performed = true;
                        modified = true;
                        continue;
                    }
                }
                let others = self.potential_consumers.get(&tp.topic).cloned().unwrap_or_default();
                if others.iter().any(|o| self.current.contains_key(o) && self.size(&consumer) > self.size(o) + 1) {
                    let target = self.sorted().into_iter().find(|m| self.subscribes(m, &tp.topic));
                    if let Some(to) = target {
                        self.move_partition(tp, &to);
                        performed = true;
                        modified = true;
                    }
                }
            }
            if !modified {
                return performed;
            }
        }
    }

    fn balance_score(&self) -> usize {
        let sizes: Vec<usize> = self.current.values().map(Vec::len).collect();
        let mut score = 0;
        for (i, a) in sizes.iter().enumerate() {
            for b in &sizes[i + 1..] {
                score += a.abs_diff(*b);
            }
        }
        score
    }
}

// long: a port of Kafka's AbstractStickyAssignor.generalAssign, step for step, to be read beside the Java
fn general(
    topics: &Topics,
    members: &[Member],
    order: &[usize],
    owned: BTreeMap<String, Vec<TopicPartition>>,
) -> Assignment {
    let mut potential_consumers: BTreeMap<JStr, Vec<String>> = topics.keys().map(|t| (t.clone(), Vec::new())).collect();
    let mut potential_topics = BTreeMap::new();
    for &i in order {
        let m = &members[i];
        let subscribed: Vec<JStr> =
            m.topics.iter().map(|t| JStr(t.clone())).filter(|t| topics.contains_key(t)).collect();
        for t in &subscribed {
            potential_consumers.entry(t.clone()).or_default().push(m.id.clone());
        }
        potential_topics.insert(m.id.clone(), subscribed);
    }
    let mut owner = BTreeMap::new();
    for (member, list) in &owned {
        for tp in list {
            owner.insert(tp.clone(), member.clone());
        }
    }
    let mut sorted_topics: Vec<JStr> = topics.keys().cloned().collect();
    sorted_topics.sort_by(|a, b| {
        let count = |t: &JStr| potential_consumers.get(t).map_or(0, Vec::len);
        count(a).cmp(&count(b)).then_with(|| a.cmp(b))
    });
    let mut all_partitions: Vec<TopicPartition> = sorted_topics
        .iter()
        .flat_map(|t| (0..topics[t]).map(|p| TopicPartition { topic: t.clone(), partition: p }))
        .collect();

    // prepopulateCurrentAssignments: older generations' claims, the newest of them kept.
    let max_generation = members.iter().map(|m| m.generation).max().unwrap_or(NO_GENERATION).max(NO_GENERATION);
    let mut previous: BTreeMap<TopicPartition, Previous> = BTreeMap::new();
    for &i in order {
        let m = &members[i];
        let generation = if m.generation >= 0 && m.generation < max_generation {
            m.generation
        } else if m.generation < 0 && max_generation > NO_GENERATION {
            NO_GENERATION
        } else {
            continue;
        };
        for tp in &m.owned {
            if previous.get(tp).is_none_or(|p| generation > p.generation) {
                previous.insert(tp.clone(), Previous { member: m.id.clone(), generation });
            }
        }
    }

    let mut g = General {
        topics,
        potential_consumers,
        potential_topics,
        current: owned,
        owner,
        movements: Movements::default(),
        total: topics.values().sum(),
    };
    // assignOwnedPartitions: drop claims on topics the member no longer subscribes to.
    let mut revocation_required = false;
    let mut assigned = BTreeSet::new();
    for m in members {
        let list = g.current.entry(m.id.clone()).or_default();
        list.retain(|tp| {
            let keep = m.subscribes(&tp.topic);
            revocation_required |= !keep;
            keep
        });
        assigned.extend(list.iter().cloned());
    }
    let mut unassigned: Vec<TopicPartition> =
        all_partitions.iter().filter(|tp| !assigned.contains(*tp)).cloned().collect();

    // balance()
    let initializing = g.current.values().all(Vec::is_empty);
    for tp in &unassigned {
        if let Some(to) = g.sorted().into_iter().find(|m| g.subscribes(m, &tp.topic)) {
            g.current.entry(to.clone()).or_default().push(tp.clone());
            g.owner.insert(tp.clone(), to);
        }
    }
    let fixed_topics: BTreeSet<JStr> = topics.keys().filter(|t| !g.can_topic_participate(t)).cloned().collect();
    all_partitions.retain(|tp| !fixed_topics.contains(&tp.topic));
    unassigned.retain(|tp| !fixed_topics.contains(&tp.topic));
    let fixed_members: Vec<String> =
        members.iter().map(|m| m.id.clone()).filter(|id| !g.can_consumer_participate(id)).collect();
    let mut fixed = BTreeMap::new();
    for id in fixed_members {
        if let Some(list) = g.current.remove(&id) {
            fixed.insert(id, list);
        }
    }
    let before = (g.current.clone(), g.owner.clone(), g.balance_score());
    if !revocation_required {
        g.perform_reassignments(&unassigned, &previous);
    }
    let performed = g.perform_reassignments(&all_partitions, &previous);
    if !initializing && performed && g.balance_score() >= before.2 {
        g.current = before.0;
        g.owner = before.1;
    }
    g.current.extend(fixed);
    let mut out = empty_assignment(members);
    out.extend(g.current);
    out
}

// ---------------------------------------------------------------------------------------------
// Input as JSON: the shape of one case in `shared/vectors/kafka_assignors.json`, for the CLI.

/// Bounds on what `from_json` accepts: enough for any real group, small enough that the
/// general sticky algorithm (cubic at worst) answers at once.
pub mod limits {
    pub const MEMBERS_MAX: usize = 1_000;
    pub const PARTITIONS_MAX: u64 = 10_000;
}

#[derive(serde::Deserialize)]
struct RawCase {
    partitions_per_topic: BTreeMap<String, u32>,
    members: Vec<RawMember>,
}

#[derive(serde::Deserialize)]
struct RawMember {
    member_id: String,
    topics: Vec<String>,
    #[serde(default)]
    group_instance_id: Option<String>,
    #[serde(default)]
    owned_partitions: Vec<String>,
    #[serde(default)]
    generation: Option<i32>,
}

/// A group to assign: topics' partition counts, and members in the order they joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub partitions_per_topic: BTreeMap<String, u32>,
    pub members: Vec<Member>,
}

impl Group {
    /// Parses one assignor case. Other fields (a case's name and expectations) are ignored.
    /// Every error names its path.
    pub fn from_json(text: &str) -> Result<Group, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawCase = serde_path_to_error::deserialize(de).map_err(|e| {
            // The path says where; the position serde adds says it again, less readably.
            let inner = e.inner().to_string();
            let reason = inner.rsplit_once(" at line ").map_or(inner.as_str(), |(r, _)| r).to_string();
            format!("{}: {reason}", e.path())
        })?;
        if raw.members.len() > limits::MEMBERS_MAX {
            return Err(format!("members: at most {} members", limits::MEMBERS_MAX));
        }
        let total: u64 = raw.partitions_per_topic.values().map(|&n| u64::from(n)).sum();
        if total > limits::PARTITIONS_MAX {
            return Err(format!("partitions_per_topic: at most {} partitions in all", limits::PARTITIONS_MAX));
        }
        let mut members = Vec::with_capacity(raw.members.len());
        for (i, m) in raw.members.into_iter().enumerate() {
            if members.iter().any(|x: &Member| x.id == m.member_id) {
                return Err(format!("members[{i}].member_id: \"{}\" appears twice", m.member_id));
            }
            let owned = m
                .owned_partitions
                .iter()
                .enumerate()
                .map(|(j, s)| {
                    TopicPartition::parse(s).ok_or_else(|| {
                        format!("members[{i}].owned_partitions[{j}]: \"{s}\" is not \"<topic>-<partition>\"")
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            // A member can only have owned partitions that exist, once each. (Owned partitions
            // of topics without metadata are dropped by the assignor, as in Java, KA-8.)
            for (j, tp) in owned.iter().enumerate() {
                let count = raw.partitions_per_topic.get(&tp.topic.0);
                if count.is_some_and(|&n| tp.partition >= n) {
                    return Err(format!(
                        "members[{i}].owned_partitions[{j}]: {} has {} partitions",
                        tp.topic.0,
                        count.copied().unwrap_or(0)
                    ));
                }
                if owned[..j].contains(tp) {
                    return Err(format!("members[{i}].owned_partitions[{j}]: \"{tp}\" appears twice"));
                }
            }
            members.push(Member {
                id: m.member_id,
                instance_id: m.group_instance_id,
                topics: m.topics,
                owned,
                generation: m.generation.unwrap_or(NO_GENERATION),
            });
        }
        Ok(Group { partitions_per_topic: raw.partitions_per_topic, members })
    }
}

/// An assignment as JSON: member id → `"topic-partition"` strings, in the assignor's order.
pub fn to_json(assignment: &Assignment) -> serde_json::Value {
    assignment
        .iter()
        .map(|(member, list)| (member.clone(), list.iter().map(ToString::to_string).collect::<Vec<_>>().into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
