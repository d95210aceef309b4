//! RabbitMQ's topology as authors write it, in the words of a definitions file: exchanges with
//! their type and `alternate-exchange`, bindings from a source to a queue or an exchange with
//! a routing key or header arguments, queue arguments (`x-message-ttl`, …), and what a
//! producer publishes to an exchange.

use super::raw;
use super::validate::{check_count, check_new_name, err, ms};
use super::{index_u32, limits, ScenarioError};
use crate::exchange::{BindingSpec, Destination, ExchangeKind, ExchangeSpec, HeaderMatch, Topology, DEFAULT_EXCHANGE};
use crate::time::Duration;
use serde_json::{Map, Value};

/// Where a queue's dead letters go: an exchange (`DEFAULT_EXCHANGE` for `""`) and, if set, the
/// routing key that replaces the message's own (RMQ-11, RMQ-39).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DlxSpec {
    pub exchange: u32,
    /// An index into `Topology::keys`.
    pub routing_key: Option<u32>,
}

/// One kind of message a producer publishes: its routing key and headers (indices into
/// `Topology::keys` and `Topology::headers`), and the running total of the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeRef {
    pub key: u32,
    pub headers: u32,
    pub until: u32,
}

/// What a producer publishes to an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishSpec {
    pub exchange: u32,
    pub mandatory: bool,
    pub shapes: Vec<ShapeRef>,
    /// The most queues one of its publishes reaches, for the run's message bound.
    pub fanout: u32,
}

/// Exchanges and bindings a scenario may declare.
pub const EXCHANGES_MAX: usize = 32;
pub const BINDINGS_MAX: usize = 256;
/// Kinds of message one producer publishes, and headers on each.
pub const SHAPES_MAX: usize = 64;
pub const HEADERS_MAX: usize = 16;
/// A routing key's length: AMQP's short string.
pub const KEY_CHARS_MAX: usize = 255;

/// The queue arguments a queue's `arguments` may carry, and what each becomes.
const QUEUE_ARGUMENTS: &[&str] = &[
    "x-message-ttl",
    "x-max-length",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-delivery-limit",
    "x-queue-type",
    "x-single-active-consumer",
];

/// A queue's dead-letter exchange by name, resolved once the exchanges are known.
pub struct RawDlx {
    pub exchange: String,
    pub routing_key: Option<String>,
}

/// Reads a queue's `arguments` into the fields they mean (RabbitMQ only): `x-message-ttl`
/// is `ttl_ms`, `x-max-length` and `x-overflow` are `max_length` and `overflow`,
/// `x-queue-type` and `x-delivery-limit` its lease. Returns its dead-letter exchange.
// long: one check per argument RabbitMQ defines, each naming its path
pub(super) fn queue_arguments(at: &str, q: &mut raw::Queue) -> Result<Option<RawDlx>, ScenarioError> {
    let Some(args) = q.arguments.take() else { return Ok(None) };
    let at = format!("{at}.arguments");
    for name in args.keys() {
        if !QUEUE_ARGUMENTS.contains(&name.as_str()) {
            return err(
                format!("{at}.{name}"),
                format!("is not a queue argument Brokerlab simulates; it knows {}", QUEUE_ARGUMENTS.join(", ")),
            );
        }
    }
    if let Some(lease) = &q.lease {
        if lease.get("model").and_then(Value::as_str) != Some("rabbitmq") {
            return err(at, "queue arguments are RabbitMQ's; this queue's lease model is not \"rabbitmq\"");
        }
    }
    let integer = |name: &str, min: i64| -> Result<Option<i64>, ScenarioError> {
        match args.get(name) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if n >= min => Ok(Some(n)),
                _ => err(format!("{at}.{name}"), format!("must be an integer of at least {min}")),
            },
        }
    };
    let text = |name: &str| -> Result<Option<String>, ScenarioError> {
        match args.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => err(format!("{at}.{name}"), "must be a string"),
        }
    };
    let once = |name: &str, field: &str, set: bool| -> Result<(), ScenarioError> {
        if set {
            return err(format!("{at}.{name}"), format!("and {field} say the same thing; keep one"));
        }
        Ok(())
    };
    #[allow(clippy::cast_precision_loss)] // at most 2^53 ms is checked by `ms` later
    if let Some(ttl) = integer("x-message-ttl", 0)? {
        once("x-message-ttl", "ttl_ms", q.ttl_ms.is_some())?;
        q.ttl_ms = Some(ttl as f64);
    }
    if let Some(n) = integer("x-max-length", 0)? {
        once("x-max-length", "max_length", q.max_length.is_some())?;
        q.max_length = Some(n);
    }
    if let Some(o) = text("x-overflow")? {
        once("x-overflow", "overflow", q.overflow.is_some())?;
        q.overflow = Some(match o.as_str() {
            "drop-head" => "drop_head".to_owned(),
            "reject-publish" => "reject_publish".to_owned(),
            "reject-publish-dlx" => "reject_publish_dlx".to_owned(),
            other => {
                return err(
                    format!("{at}.x-overflow"),
                    format!("\"{other}\" is not one of \"drop-head\", \"reject-publish\", \"reject-publish-dlx\""),
                )
            }
        });
    }
    let queue_type = text("x-queue-type")?;
    let limit = integer("x-delivery-limit", -1)?;
    if queue_type.is_some() || limit.is_some() {
        let mut lease = match q.lease.take() {
            Some(Value::Object(m)) => m,
            _ => Map::from_iter([("model".to_owned(), Value::from("rabbitmq"))]),
        };
        if let Some(t) = queue_type {
            once("x-queue-type", "lease.queue_type", lease.contains_key("queue_type"))?;
            lease.insert("queue_type".to_owned(), Value::from(t));
        }
        if let Some(n) = limit {
            once("x-delivery-limit", "lease.delivery_limit", lease.contains_key("delivery_limit"))?;
            lease.insert("delivery_limit".to_owned(), Value::from(n));
        }
        q.lease = Some(Value::Object(lease));
    }
    match args.get("x-single-active-consumer") {
        None => {}
        Some(Value::Bool(b)) => {
            once("x-single-active-consumer", "single_active_consumer", q.single_active_consumer)?;
            q.single_active_consumer = *b;
        }
        Some(_) => return err(format!("{at}.x-single-active-consumer"), "must be true or false"),
    }
    let routing_key = text("x-dead-letter-routing-key")?;
    match text("x-dead-letter-exchange")? {
        Some(exchange) => {
            once("x-dead-letter-exchange", "dead_letter", q.dead_letter == Some(true))?;
            Ok(Some(RawDlx { exchange, routing_key }))
        }
        None if routing_key.is_some() => {
            err(format!("{at}.x-dead-letter-routing-key"), "needs x-dead-letter-exchange (RMQ-11)")
        }
        None => Ok(None),
    }
}

/// The scenario's exchanges and bindings, over its queues.
// long: exchanges, their alternates once all are named, then bindings, each naming its path
pub(super) fn topology(
    exchanges: Vec<raw::Exchange>,
    bindings: Vec<raw::Binding>,
    queues: &[super::QueueSpec],
) -> Result<Topology, ScenarioError> {
    check_count("exchanges", exchanges.len(), 0, EXCHANGES_MAX)?;
    check_count("bindings", bindings.len(), 0, BINDINGS_MAX)?;
    let mut t = Topology {
        // Only a RabbitMQ queue can be bound or reached by name (RMQ-25).
        queues: queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.lease.rabbitmq_type().is_some())
            .map(|(i, q)| (q.name.clone(), index_u32(i)))
            .collect(),
        // A message sent straight to a queue is routed by its name (RMQ-25).
        keys: std::iter::once(String::new()).chain(queues.iter().map(|q| q.name.clone())).collect(),
        headers: vec![Vec::new()],
        ..Topology::default()
    };
    let mut alternates = Vec::new();
    for (i, e) in exchanges.iter().enumerate() {
        let at = format!("exchanges[{i}]");
        check_new_name(&format!("{at}.name"), &e.name, t.exchanges.iter().map(|x| &x.name), "exchange")?;
        if e.name.starts_with("amq.") {
            return err(format!("{at}.name"), "names starting with \"amq.\" are the broker's own (403 ACCESS_REFUSED)");
        }
        let kind = match e.kind.as_str() {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            other => {
                return err(
                    format!("{at}.type"),
                    format!("\"{other}\" is not one of \"direct\", \"fanout\", \"topic\", \"headers\""),
                )
            }
        };
        let mut alternate = None;
        for (name, v) in e.arguments.iter().flatten() {
            match (name.as_str(), v) {
                ("alternate-exchange", Value::String(ae)) => alternate = Some(ae.clone()),
                ("alternate-exchange", _) => return err(format!("{at}.arguments.{name}"), "must be a string"),
                _ => {
                    return err(
                        format!("{at}.arguments.{name}"),
                        "is not an argument Brokerlab simulates; it knows alternate-exchange",
                    )
                }
            }
        }
        alternates.push(alternate);
        t.exchanges.push(ExchangeSpec { name: e.name.clone(), kind, alternate: None });
    }
    for (i, ae) in alternates.into_iter().enumerate() {
        if let Some(ae) = ae {
            // RMQ-36: a missing AE only logs a warning in the broker; here it is a typo.
            let Some(x) = t.exchange(&ae) else {
                return err(
                    format!("exchanges[{i}].arguments.alternate-exchange"),
                    format!("no exchange is named \"{ae}\""),
                );
            };
            t.exchanges[i].alternate = Some(x);
        }
    }
    for (i, b) in bindings.into_iter().enumerate() {
        let binding = binding(&format!("bindings[{i}]"), b, &t)?;
        t.bindings.push(binding);
    }
    Ok(t)
}

fn binding(at: &str, b: raw::Binding, t: &Topology) -> Result<BindingSpec, ScenarioError> {
    // RMQ-25: the default exchange cannot be bound.
    if b.source.is_empty() {
        return err(format!("{at}.source"), "the default exchange cannot be bound (403 ACCESS_REFUSED, RMQ-25)");
    }
    let Some(exchange) = t.exchange(&b.source) else {
        return err(format!("{at}.source"), format!("no exchange is named \"{}\"", b.source));
    };
    let to = match b.destination_type.as_deref() {
        None | Some("queue") => match t.queues.get(&b.destination) {
            Some(&q) => Destination::Queue(q),
            None => {
                return err(format!("{at}.destination"), format!("no RabbitMQ queue is named \"{}\"", b.destination))
            }
        },
        Some("exchange") => match t.exchange(&b.destination) {
            Some(x) => Destination::Exchange(x),
            None => return err(format!("{at}.destination"), format!("no exchange is named \"{}\"", b.destination)),
        },
        Some(other) => {
            return err(format!("{at}.destination_type"), format!("\"{other}\" is not one of \"queue\", \"exchange\""))
        }
    };
    check_key(&format!("{at}.routing_key"), &b.routing_key)?;
    let kind = t.exchanges[exchange as usize].kind;
    let headers = match (kind, b.arguments) {
        (ExchangeKind::Headers, args) => Some(header_match(&format!("{at}.arguments"), args.unwrap_or_default())?),
        (_, Some(args)) if !args.is_empty() => {
            return err(format!("{at}.arguments"), "only a headers exchange's bindings match on arguments (RMQ-31)")
        }
        _ => None,
    };
    Ok(BindingSpec { exchange, to, key: b.routing_key, headers })
}

/// RMQ-31: `x-match` is `all` (the default), `any`, `all-with-x` or `any-with-x`.
fn header_match(at: &str, mut args: Map<String, Value>) -> Result<HeaderMatch, ScenarioError> {
    let (any, with_x) = match args.remove("x-match") {
        None => (false, false),
        Some(Value::String(m)) => match m.as_str() {
            "all" => (false, false),
            "any" => (true, false),
            "all-with-x" => (false, true),
            "any-with-x" => (true, true),
            other => {
                return err(
                    format!("{at}.x-match"),
                    format!("\"{other}\" is not one of \"all\", \"any\", \"all-with-x\", \"any-with-x\""),
                )
            }
        },
        Some(_) => return err(format!("{at}.x-match"), "must be a string"),
    };
    Ok(HeaderMatch { any, with_x, args: header_values(at, args)? })
}

/// Header names and values, sorted by name; values are strings, numbers or booleans, compared
/// as text.
fn header_values(at: &str, map: Map<String, Value>) -> Result<Vec<(String, String)>, ScenarioError> {
    check_count(at, map.len(), 0, HEADERS_MAX)?;
    let mut out = Vec::with_capacity(map.len());
    for (name, v) in map {
        let value = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return err(format!("{at}.{name}"), "must be a string, a number or a boolean"),
        };
        check_key(&format!("{at}.{name}"), &value)?;
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}

fn check_key(at: &str, key: &str) -> Result<(), ScenarioError> {
    if key.chars().count() > KEY_CHARS_MAX {
        return err(at, format!("must be at most {KEY_CHARS_MAX} characters"));
    }
    if key.chars().any(char::is_control) {
        return err(at, "must not contain control characters");
    }
    Ok(())
}

/// An exchange by name, `""` being the default exchange (RMQ-25).
fn exchange_ref(at: &str, name: &str, t: &Topology) -> Result<u32, ScenarioError> {
    if name.is_empty() {
        return Ok(DEFAULT_EXCHANGE);
    }
    match t.exchange(name) {
        Some(x) => Ok(x),
        None => err(at, format!("no exchange is named \"{name}\"")),
    }
}

/// Interns a set of headers.
fn headers_index(t: &mut Topology, headers: Vec<(String, String)>) -> u32 {
    match t.headers.iter().position(|x| *x == headers) {
        Some(i) => index_u32(i),
        None => {
            t.headers.push(headers);
            index_u32(t.headers.len() - 1)
        }
    }
}

/// Interns a routing key.
fn key_index(t: &mut Topology, key: &str) -> u32 {
    match t.keys.iter().position(|k| k == key) {
        Some(i) => index_u32(i),
        None => {
            t.keys.push(key.to_owned());
            index_u32(t.keys.len() - 1)
        }
    }
}

/// A queue's dead-letter exchange, by index (RMQ-39: `""` is the default exchange).
pub(super) fn dlx(at: &str, raw: RawDlx, t: &mut Topology) -> Result<DlxSpec, ScenarioError> {
    // RMQ-39: the broker silently drops a dead letter to a missing DLX; here it is a typo.
    let exchange = exchange_ref(&format!("{at}.arguments.x-dead-letter-exchange"), &raw.exchange, t)?;
    if let Some(k) = &raw.routing_key {
        check_key(&format!("{at}.arguments.x-dead-letter-routing-key"), k)?;
    }
    let routing_key = raw.routing_key.map(|k| key_index(t, &k));
    Ok(DlxSpec { exchange, routing_key })
}

/// What a producer with `exchange` set publishes, its keys and headers interned in `t`.
pub(super) fn publish(at: &str, p: &raw::Producer, t: &mut Topology) -> Result<PublishSpec, ScenarioError> {
    let exchange = exchange_ref(&format!("{at}.exchange"), p.exchange.as_deref().unwrap_or_default(), t)?;
    let shapes: Vec<raw::Shape> = match (&p.routing_key, &p.messages) {
        (Some(_), Some(_)) => return err(format!("{at}.messages"), "give routing_key or messages, not both"),
        (Some(k), None) => vec![raw::Shape { routing_key: k.clone(), headers: None, weight: None }],
        (None, Some(m)) => m
            .iter()
            .map(|s| raw::Shape { routing_key: s.routing_key.clone(), headers: s.headers.clone(), weight: s.weight })
            .collect(),
        (None, None) => vec![raw::Shape { routing_key: String::new(), headers: None, weight: None }],
    };
    check_count(&format!("{at}.messages"), shapes.len(), 1, SHAPES_MAX)?;
    let mut out = Vec::with_capacity(shapes.len());
    let mut total: u32 = 0;
    let mut fanout = 1;
    for (i, s) in shapes.into_iter().enumerate() {
        let path = format!("{at}.messages[{i}]");
        check_key(&format!("{path}.routing_key"), &s.routing_key)?;
        let weight = match s.weight {
            None => 1,
            Some(w) => match u32::try_from(w) {
                Ok(w) if (1..=1_000).contains(&w) => w,
                _ => return err(format!("{path}.weight"), "must be from 1 to 1000"),
            },
        };
        total += weight;
        let headers = header_values(&format!("{path}.headers"), s.headers.unwrap_or_default())?;
        let h = headers_index(t, headers);
        let key = key_index(t, &s.routing_key);
        let reached = t.route(exchange, &t.keys[key as usize], &t.headers[h as usize]).len();
        fanout = fanout.max(index_u32(reached));
        out.push(ShapeRef { key, headers: h, until: total });
    }
    Ok(PublishSpec { exchange, mandatory: p.mandatory, shapes: out, fanout })
}

/// A script's `publish` step, as written.
pub(super) struct ScriptPublish {
    pub exchange: String,
    pub routing_key: String,
    pub headers: Option<Map<String, Value>>,
    pub expiration_ms: Option<f64>,
}

/// A script's `publish`: its route (the exchange must exist, RMQ-35's 404) and its TTL.
pub(super) fn script_publish(
    at: &str,
    p: ScriptPublish,
    t: &mut Topology,
) -> Result<(crate::exchange::Route, Option<Duration>), ScenarioError> {
    let exchange = exchange_ref(&format!("{at}.exchange"), &p.exchange, t)?;
    check_key(&format!("{at}.routing_key"), &p.routing_key)?;
    let headers = header_values(&format!("{at}.headers"), p.headers.unwrap_or_default())?;
    let h = headers_index(t, headers);
    let route = crate::exchange::Route { exchange, key: key_index(t, &p.routing_key), headers: h };
    Ok((route, expiration(at, p.expiration_ms)?))
}

/// A producer's `expiration_ms` (RMQ-20), at most the run's longest TTL.
pub(super) fn expiration(at: &str, value: Option<f64>) -> Result<Option<Duration>, ScenarioError> {
    #[allow(clippy::cast_precision_loss)] // 7 days of ms is exact in an f64
    let max = limits::DURATION_MS_MAX as f64;
    value.map(|v| ms(&format!("{at}.expiration_ms"), v, max)).transpose()
}
