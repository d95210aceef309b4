//! RabbitMQ's routing: exchanges, bindings, and the set of queues a publish reaches. A leaf:
//! the topology is data the scenario validated, and `Topology::route` is a pure function of
//! it, the exchange, the routing key and the headers.
//!
//! The rules: RMQ-24 (a set of queues, one copy each), RMQ-25 (the default exchange),
//! RMQ-26 (direct), RMQ-27 (fanout), RMQ-28/29 (topic), RMQ-31 (headers), RMQ-36/37 (the
//! alternate exchange). Header values are compared as strings, which is what 3.10's `==`
//! does for the string values a scenario can carry (RMQ-31).

use std::collections::BTreeMap;

/// The default exchange's index in a trace: it is not one of the scenario's exchanges.
pub const DEFAULT_EXCHANGE: u32 = u32::MAX;
/// A route through no binding: the default exchange, by the queue's name.
pub const BY_NAME: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeKind,
    /// Its alternate exchange (RMQ-36), by index.
    pub alternate: Option<u32>,
}

/// `x-match` (RMQ-31): `all` or `any`, and whether `x-` arguments count (`-with-x`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    pub any: bool,
    pub with_x: bool,
    /// Argument name and value, sorted by name; `x-match` is not among them.
    pub args: Vec<(String, String)>,
}

/// How a message was routed, as a consumer would read it: the exchange it was published to,
/// and its routing key and headers (indices into `Topology::keys` and `Topology::headers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub exchange: u32,
    pub key: u32,
    pub headers: u32,
}

/// Where a binding leads: a queue, or another exchange (RMQ-33).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Queue(u32),
    Exchange(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingSpec {
    pub exchange: u32,
    pub to: Destination,
    /// The binding key (direct, topic); empty for fanout and headers.
    pub key: String,
    /// A headers exchange's arguments.
    pub headers: Option<HeaderMatch>,
}

/// A queue a publish reaches, and the binding that took it there (`BY_NAME` for the default
/// exchange). With several bindings to one queue, the first in the scenario's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reached {
    pub queue: u32,
    pub binding: u32,
}

/// Exchange-to-exchange hops and alternate exchanges followed for one publish, at most: a
/// route visits each exchange once, so this is only a guard.
const HOPS_MAX: usize = 4_096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub exchanges: Vec<ExchangeSpec>,
    pub bindings: Vec<BindingSpec>,
    /// The queues by name, for the default exchange (RMQ-25).
    pub queues: BTreeMap<String, u32>,
    /// Every routing key a message can carry (what producers publish with, and dead-letter
    /// routing keys), interned; 0 is `""`.
    pub keys: Vec<String>,
    /// Every set of headers a message can carry, each sorted by name, interned; 0 is none.
    pub headers: Vec<Vec<(String, String)>>,
}

impl Topology {
    /// An exchange's name as a trace says it: `(default)` for `""`.
    pub fn exchange_name(&self, exchange: u32) -> &str {
        self.exchanges.get(exchange as usize).map_or("(default)", |e| e.name.as_str())
    }

    pub fn exchange(&self, name: &str) -> Option<u32> {
        self.exchanges.iter().position(|e| e.name == name).and_then(|i| u32::try_from(i).ok())
    }

    /// The queues a message with routing `key` and `headers` published to `exchange` reaches, sorted by queue,
    /// one entry each (RMQ-24). Empty: unroutable (RMQ-34). `DEFAULT_EXCHANGE` routes by the
    /// key as a queue's name, with no alternate exchange (RMQ-25).
    pub fn route(&self, exchange: u32, key: &str, headers: &[(String, String)]) -> Vec<Reached> {
        let mut reached: BTreeMap<u32, u32> = BTreeMap::new();
        if exchange == DEFAULT_EXCHANGE {
            if let Some(&q) = self.queues.get(key) {
                reached.insert(q, BY_NAME);
            }
            return reached.into_iter().map(|(queue, binding)| Reached { queue, binding }).collect();
        }
        // RMQ-33: a worklist over exchanges with a seen-set; RMQ-36: an exchange whose own
        // bindings match nothing hands the message, unchanged, to its alternate exchange.
        let mut seen = vec![false; self.exchanges.len()];
        let mut work = vec![exchange];
        let mut hops = 0;
        while let Some(e) = work.pop() {
            hops += 1;
            if seen[e as usize] || hops > HOPS_MAX {
                continue;
            }
            seen[e as usize] = true;
            let mut matched = false;
            for (i, b) in self.bindings.iter().enumerate().filter(|(_, b)| b.exchange == e) {
                if !self.matches(e, b, key, headers) {
                    continue;
                }
                matched = true;
                match b.to {
                    Destination::Queue(q) => {
                        reached.entry(q).or_insert(u32::try_from(i).unwrap_or(u32::MAX));
                    }
                    Destination::Exchange(x) => work.push(x),
                }
            }
            if !matched {
                if let Some(ae) = self.exchanges[e as usize].alternate {
                    work.push(ae);
                }
            }
        }
        reached.into_iter().map(|(queue, binding)| Reached { queue, binding }).collect()
    }

    fn matches(&self, e: u32, b: &BindingSpec, key: &str, headers: &[(String, String)]) -> bool {
        match self.exchanges[e as usize].kind {
            ExchangeKind::Direct => b.key == key,
            ExchangeKind::Fanout => true,
            ExchangeKind::Topic => topic_matches(&b.key, key),
            ExchangeKind::Headers => b.headers.as_ref().is_some_and(|h| headers_match(h, headers)),
        }
    }
}

/// RMQ-28: words split on `.`, empty words kept; `""` has none.
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Whether a topic binding `pattern` matches `key` (RMQ-28): `*` is exactly one word, `#`
/// zero or more. A dynamic programme over (pattern word, key word), so `#.#.#` costs no more
/// than the product of the two lengths.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let (p, k) = (words(pattern), words(key));
    // can[j]: the first i pattern words match the first j key words.
    let mut can = vec![false; k.len() + 1];
    can[0] = true;
    for w in &p {
        let mut next = vec![false; k.len() + 1];
        for j in 0..=k.len() {
            next[j] = match *w {
                "#" => can[j] || (j > 0 && next[j - 1]),
                "*" => j > 0 && can[j - 1],
                lit => j > 0 && can[j - 1] && k[j - 1] == lit,
            };
        }
        can = next;
    }
    can[k.len()]
}

/// Whether a headers binding matches a message's headers (RMQ-31). Without `-with-x`,
/// arguments and headers named `x-…` do not count. `all` with no argument left matches every
/// message, `any` with none matches none.
pub fn headers_match(h: &HeaderMatch, headers: &[(String, String)]) -> bool {
    let counted = |name: &str| h.with_x || !name.starts_with("x-");
    let mut args = h.args.iter().filter(|(n, _)| counted(n)).peekable();
    if args.peek().is_none() {
        return !h.any;
    }
    let has = |(n, v): &(String, String)| headers.iter().any(|(hn, hv)| hn == n && hv == v);
    if h.any {
        args.any(has)
    } else {
        args.all(has)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RMQ-29: the broker's own topic test (3.10.8 `unit_access_control_SUITE`, 4.0.9
    /// `routing_SUITE`), every key against every pattern of its set.
    #[test]
    fn topic_matching_is_the_brokers_own_test_vector() {
        let patterns = [
            "a.b.c",
            "a.*.c",
            "#",
            "#.#",
            "*.b.c",
            "a.#",
            "a.#.#",
            "*.*.*",
            "*.#",
            "#.*.#",
            "*.#.#",
            "#.#.#",
            "#.b.#",
            "a.#.b",
            "#.b",
            "*.*",
            "a.*",
            "a.b",
            "a.b.b",
            "",
            "*",
            "a.b.b.c",
            "b.c",
            "vodka.martini",
        ];
        let cases: [(&str, &[&str]); 5] = [
            (
                "a.b.c",
                &[
                    "a.b.c", "a.*.c", "#", "#.#", "*.b.c", "a.#", "a.#.#", "*.*.*", "*.#", "#.*.#", "*.#.#", "#.#.#",
                    "#.b.#",
                ],
            ),
            (
                "a.b",
                &[
                    "a.#.b", "#", "#.#", "#.b", "*.*", "a.*", "a.#", "a.#.#", "a.b", "*.#", "#.*.#", "*.#.#", "#.#.#",
                    "#.b.#",
                ],
            ),
            (
                "a.b.b",
                &[
                    "a.#.b", "#", "#.#", "#.b", "a.#", "a.#.#", "a.b.b", "*.*.*", "*.#", "#.*.#", "*.#.#", "#.#.#",
                    "#.b.#",
                ],
            ),
            ("", &["#", "#.#", "", "#.#.#"]),
            ("oneword", &["#", "#.#", "*.#", "#.*.#", "*.#.#", "#.#.#", "*"]),
        ];
        for (key, want) in cases {
            let mut got: Vec<&str> = patterns.iter().copied().filter(|p| topic_matches(p, key)).collect();
            let mut want = want.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "key {key:?}");
        }
        // RMQ-28: empty words are words, and a wildcard counts only as a whole word.
        assert!(topic_matches("a.*", "a."));
        assert!(!topic_matches("a.*", "a"));
        assert!(topic_matches("a#b", "a#b") && !topic_matches("a#b", "axb"));
    }

    fn h(any: bool, with_x: bool, args: &[(&str, &str)]) -> HeaderMatch {
        HeaderMatch { any, with_x, args: args.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect() }
    }

    #[test]
    fn headers_match_all_or_any_and_skip_x_arguments_unless_told() {
        let msg = [("format".to_owned(), "pdf".to_owned()), ("type".to_owned(), "report".to_owned())];
        assert!(headers_match(&h(false, false, &[("format", "pdf"), ("type", "report")]), &msg));
        assert!(!headers_match(&h(false, false, &[("format", "pdf"), ("type", "log")]), &msg));
        assert!(headers_match(&h(true, false, &[("format", "zip"), ("type", "report")]), &msg));
        assert!(!headers_match(&h(true, false, &[("format", "zip")]), &msg));
        // Degenerate bindings: all with nothing matches all, any with nothing matches none.
        assert!(headers_match(&h(false, false, &[("x-id", "1")]), &msg));
        assert!(!headers_match(&h(true, false, &[]), &msg));
        // all-with-x counts the x- argument.
        assert!(!headers_match(&h(false, true, &[("x-id", "1")]), &msg));
    }

    fn topology() -> Topology {
        let ex = |name: &str, kind, alternate| ExchangeSpec { name: name.to_owned(), kind, alternate };
        let bind = |exchange, to, key: &str| BindingSpec { exchange, to, key: key.to_owned(), headers: None };
        Topology {
            exchanges: vec![
                ex("orders", ExchangeKind::Topic, Some(1)),
                ex("unrouted", ExchangeKind::Fanout, None),
                ex("all", ExchangeKind::Fanout, None),
            ],
            bindings: vec![
                bind(0, Destination::Queue(0), "eu.*"),
                bind(0, Destination::Queue(0), "#.high"),
                bind(0, Destination::Queue(1), "us.#"),
                bind(0, Destination::Exchange(2), "#.audit"),
                bind(1, Destination::Queue(2), ""),
                bind(2, Destination::Queue(3), ""),
                bind(2, Destination::Queue(0), ""),
            ],
            queues: [("eu", 0), ("us", 1), ("lost", 2), ("audit", 3)].map(|(n, q)| (n.to_owned(), q)).into(),
            keys: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn queues(t: &Topology, exchange: u32, key: &str) -> Vec<(u32, u32)> {
        t.route(exchange, key, &[]).into_iter().map(|r| (r.queue, r.binding)).collect()
    }

    #[test]
    fn a_publish_reaches_a_set_of_queues_once_each_or_the_alternate_exchange() {
        let t = topology();
        // Two bindings to one queue: one copy, by the first binding (RMQ-24).
        assert_eq!(queues(&t, 0, "eu.high"), vec![(0, 0)]);
        assert_eq!(queues(&t, 0, "us.east.high"), vec![(0, 1), (1, 2)]);
        // Through an exchange-to-exchange binding, deduplicated again (RMQ-33).
        assert_eq!(queues(&t, 0, "eu.audit"), vec![(0, 0), (3, 5)]);
        // Nothing matches: the alternate exchange takes it (RMQ-36).
        assert_eq!(queues(&t, 0, "asia.low"), vec![(2, 4)]);
        // The default exchange: by name, no alternate (RMQ-25).
        assert_eq!(queues(&t, DEFAULT_EXCHANGE, "us"), vec![(1, BY_NAME)]);
        assert!(queues(&t, DEFAULT_EXCHANGE, "nowhere").is_empty());
    }
}
