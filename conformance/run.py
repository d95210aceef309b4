"""The conformance suite: each timeline in conformance/timelines is a Brokerlab scenario with a
script. It runs on the engine (the real CLI, `brokerlab run --trace`) and, through a real AMQP
0-9-1 client (pika), on a real RabbitMQ on loopback, and the observable outcomes are compared:
which consumer got which message in which order, the redelivered flag, x-death, the exchange and
routing key, what was returned, and each queue's length at the end. Nothing here is a
hand-written expectation: both sides run the same script.

Usage: python conformance/run.py BROKERLAB_BIN [--markdown CONFORMANCE.md] [--only NAME]
Exits 1 if a timeline differs and CONFORMANCE.md does not explain it.
"""

import json
import sys
import time
from pathlib import Path

import pika

HERE = Path(__file__).resolve().parent
PORT = 5673
# Real time per simulated millisecond: the broker's timers and ours agree to within a few ms,
# so timelines keep their steps at least 50 ms apart.
SCALE = 1.0


def ms_str(v):
    return str(int(v))


def queue_declarations(scenario):
    """Every queue the scenario makes, with RabbitMQ's arguments, in declaration order (the
    implied `<queue>.dlq` queues included, as a DLX of "" with the DLQ's name as its key)."""
    out = []
    for q in scenario.get("queues", []):
        args = dict(q.get("arguments", {}))
        lease = q.get("lease", {})
        if lease.get("queue_type"):
            args["x-queue-type"] = lease["queue_type"]
        if lease.get("delivery_limit") is not None:
            args["x-delivery-limit"] = lease["delivery_limit"]
        if q.get("ttl_ms") is not None:
            args["x-message-ttl"] = int(q["ttl_ms"])
        if q.get("max_length") is not None:
            args["x-max-length"] = q["max_length"]
        if q.get("overflow"):
            args["x-overflow"] = q["overflow"].replace("_", "-")
        if q.get("single_active_consumer"):
            args["x-single-active-consumer"] = True
        if q.get("dead_letter"):
            args["x-dead-letter-exchange"] = ""
            args["x-dead-letter-routing-key"] = q["name"] + ".dlq"
        out.append((q["name"], args))
        if q.get("dead_letter"):
            dlq = {"x-queue-type": args["x-queue-type"]} if "x-queue-type" in args else {}
            out.append((q["name"] + ".dlq", dlq))
    return out


def x_death(headers):
    deaths = (headers or {}).get("x-death") or []
    return [
        [d["queue"], d["reason"], int(d["count"]), d.get("exchange", ""), list(d.get("routing-keys", []))]
        for d in deaths
    ]


class Broker:
    """One timeline on the real broker."""

    def __init__(self, scenario):
        self.s = scenario
        params = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))
        self.params = params
        self.admin_conn = pika.BlockingConnection(params)
        self.admin = self.admin_conn.channel()
        self.deliveries = []
        self.returned = []
        self.held = {}  # consumer -> [(message id, delivery tag)]
        self.channels = {}
        self.conns = {}

    def names(self):
        return [n for n, _ in queue_declarations(self.s)], [x["name"] for x in self.s.get("exchanges", [])]

    def clean(self):
        queues, exchanges = self.names()
        for q in queues:
            self.admin.queue_delete(q)
        for x in exchanges:
            self.admin.exchange_delete(x)

    def declare(self):
        self.clean()
        for x in self.s.get("exchanges", []):
            self.admin.exchange_declare(x["name"], x["type"], arguments=x.get("arguments") or None)
        for name, args in queue_declarations(self.s):
            self.admin.queue_declare(name, durable=args.get("x-queue-type") == "quorum", arguments=args or None)
        for b in self.s.get("bindings", []):
            if b.get("destination_type", "queue") == "exchange":
                self.admin.exchange_bind(b["destination"], b["source"], b.get("routing_key", ""), arguments=b.get("arguments"))
            else:
                self.admin.queue_bind(b["destination"], b["source"], b.get("routing_key", ""), arguments=b.get("arguments"))

    def open(self, c):
        """A consumer's own connection and channel, with its prefetch, subscribed unless manual."""
        conn = pika.BlockingConnection(self.params)
        ch = conn.channel()
        ch.add_on_return_callback(lambda _ch, _m, props, _b: self.returned.append(props.message_id))
        prefetch = c.get("prefetch", 1)
        ch.basic_qos(prefetch_count=prefetch)
        self.conns[c["name"]], self.channels[c["name"]] = conn, ch
        self.held[c["name"]] = []
        if c.get("mode") != "manual":
            args = {"x-priority": c["priority"]} if c.get("priority") else None

            def on(ch_, method, props, _body, name=c["name"]):
                self.record(name, method, props)

            # Ack before processing is automatic acknowledgement (RMQ-49).
            auto = c.get("ack") == "before_processing"
            ch.basic_consume(c["from"], on, auto_ack=auto, arguments=args)

    def record(self, consumer, method, props):
        headers = props.headers or {}
        self.deliveries.append({
            "consumer": consumer,
            "message": props.message_id,
            "redelivered": bool(method.redelivered),
            "exchange": method.exchange,
            "routing_key": method.routing_key,
            "x-death": x_death(headers),
        })
        self.held[consumer].append((props.message_id, method.delivery_tag))

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            for conn in list(self.conns.values()):
                if conn.is_open:
                    conn.process_data_events(time_limit=0)
            self.admin_conn.process_data_events(time_limit=0)
            if time.monotonic() >= end:
                return
            time.sleep(0.002)

    def tag_of(self, consumer, message):
        for m, tag in reversed(self.held[consumer]):
            if m == message:
                return tag
        raise KeyError(f"{consumer} holds no {message}")

    def settle(self, consumer, message, how, multiple=False):
        ch, tag = self.channels[consumer], self.tag_of(consumer, message)
        self.held[consumer] = [(m, t) for m, t in self.held[consumer] if (t > tag if multiple else t != tag)]
        how(ch, tag)

    def step(self, op):
        kind = op["op"]
        props = lambda name, ttl: pika.BasicProperties(message_id=name, expiration=ms_str(ttl) if ttl is not None else None)
        if kind == "send":
            self.admin.basic_publish("", op["to"], op.get("message", ""), props(op.get("message"), op.get("ttl_ms")))
        elif kind == "publish":
            # Published on a channel that records returns (the first consumer's, or its own).
            p = pika.BasicProperties(message_id=op.get("message"), headers=op.get("headers"),
                                     expiration=ms_str(op["expiration_ms"]) if op.get("expiration_ms") is not None else None)
            self.publisher.basic_publish(op["exchange"], op.get("routing_key", ""), op.get("message", ""), p,
                                         mandatory=op.get("mandatory", False))
        elif kind == "receive":
            c = op["consumer"]
            queue = op.get("queue") or next(x["from"] for x in self.s["consumers"] if x["name"] == c)
            for _ in range(op.get("max", 1)):
                method, header, _ = self.channels[c].basic_get(queue, auto_ack=False)
                if method is None:
                    break
                self.record(c, method, header)
        elif kind == "ack":
            multiple = op.get("multiple", False)
            self.settle(op["consumer"], op["message"], lambda ch, t: ch.basic_ack(t, multiple=multiple), multiple)
        elif kind == "nack":
            multiple = op.get("multiple", False)
            self.settle(op["consumer"], op["message"], lambda ch, t: ch.basic_nack(t, multiple=multiple, requeue=op["requeue"]), multiple)
        elif kind == "reject":
            self.settle(op["consumer"], op["message"], lambda ch, t: ch.basic_reject(t, requeue=op["requeue"]))
        elif kind == "dead_letter":
            self.settle(op["consumer"], op["message"], lambda ch, t: ch.basic_reject(t, requeue=False))
        elif kind == "cancel":
            ch = self.channels[op["consumer"]]
            for tag in list(ch.consumer_tags):
                ch.basic_cancel(tag)
        elif kind == "crash":
            c = op["consumer"]
            self.conns[c].close()
            self.held[c] = []
        else:
            raise ValueError(f"the suite cannot play {kind!r} on a real broker")

    def run(self):
        self.declare()
        for c in self.s.get("consumers", []):
            self.open(c)
        pub_conn = pika.BlockingConnection(self.params)
        self.publisher = pub_conn.channel()
        self.publisher.add_on_return_callback(lambda _ch, _m, props, _b: self.returned.append(props.message_id))
        self.conns["(publisher)"] = pub_conn
        start = time.monotonic()
        for st in self.s.get("script", []):
            wait = start + st["at_ms"] / 1000 * SCALE - time.monotonic()
            if wait > 0:
                self.pump(wait)
            self.step(st)
            self.pump(0)
        end = start + self.s["duration_ms"] / 1000 * SCALE
        self.pump(max(0, end - time.monotonic()))
        lengths = {}
        for name, _ in queue_declarations(self.s):
            # RMQ-21: expired messages behind the head still count; the engine's ready count too.
            lengths[name] = self.admin.queue_declare(name, passive=True).method.message_count
        for conn in self.conns.values():
            if conn.is_open:
                conn.close()
        self.clean()
        self.admin_conn.close()
        return {"deliveries": self.deliveries, "returned": len(self.returned), "lengths": lengths}


def engine(binary, path):
    import subprocess

    out = subprocess.run([binary, "run", str(path), "--trace"], capture_output=True, text=True, check=True).stdout
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    summary = lines[-1]
    deliveries, returned = [], []
    consumers = [c["name"] for c in json.loads(path.read_text()).get("consumers", [])]
    for e in lines[:-1]:
        if e["kind"] == "delivered":
            d = e["delivery"]
            deliveries.append({
                "consumer": consumers[e["consumer"]],
                "message": d.get("message_id"),
                "redelivered": d["headers"].get("redeliver") == "true",
                "exchange": d.get("exchange", ""),
                "routing_key": d.get("routing_key", ""),
                "x-death": [[x["queue"], x["reason"], x["count"], x["exchange"], x["routing-keys"]] for x in d.get("x-death", [])],
            })
        elif e["kind"] == "unroutable" and e["returned"] == "returned":
            returned.append(1)
    # What a passive declare counts: every message in the queue, not delivered (ready, waiting).
    lengths = {q["name"]: q["messages"]["ready"] + q["messages"]["delayed"] for q in summary["queues"]}
    return {"deliveries": deliveries, "returned": len(returned), "lengths": lengths}


def by_consumer(outcome):
    """Deliveries per consumer, each in its order: the order across consumers (separate
    connections) is not something a client can observe."""
    per = {}
    for d in outcome["deliveries"]:
        per.setdefault(d["consumer"], []).append({k: v for k, v in d.items() if k != "consumer"})
    return {**outcome, "deliveries": per}


def ctl(*args):
    import subprocess

    out = subprocess.run([str(HERE.parent / "scripts/rabbitmq.sh"), "ctl", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def definitions(binary):
    """Every preset with RabbitMQ queues: its export (`brokerlab export rabbitmq`) imported into
    the real broker with `rabbitmqctl import_definitions`, then the broker's own lists of
    queues, exchanges and bindings held to the scenario's. Returns the failures."""
    import subprocess
    import tempfile

    failures = 0
    ids = [l.split()[0] for l in subprocess.run([binary, "presets"], capture_output=True, text=True, check=True).stdout.splitlines()]
    # Every preset, and every timeline (they carry the exchanges, bindings and arguments).
    sources = [(pid, scenario_path_of(binary, pid)) for pid in ids]
    sources += [(p.stem, p) for p in sorted((HERE / "timelines").glob("*.json"))]
    for pid, scenario_path in sources:
        with tempfile.TemporaryDirectory() as tmp:
            export = subprocess.run([binary, "export", "rabbitmq", str(scenario_path)], capture_output=True, text=True, check=True)
            defs = json.loads(export.stdout)
            if not defs["queues"]:
                continue
            defs_path = Path(tmp) / "definitions.json"
            defs_path.write_text(export.stdout)
            ctl("import_definitions", str(defs_path))
        # rabbitmqctl writes a table's entries as [name, type, value].
        table = lambda args: args if isinstance(args, dict) else {n: v for n, _t, v in args}
        queues = {q["name"]: table(q["arguments"]) for q in json.loads(ctl("list_queues", "name", "arguments", "--formatter", "json", "--quiet"))}
        exchanges = {x["name"]: x["type"] for x in json.loads(ctl("list_exchanges", "name", "type", "--formatter", "json", "--quiet"))
                     if x["name"] and not x["name"].startswith("amq.")}
        listed = ctl("list_bindings", "source_name", "destination_name", "destination_kind", "routing_key", "arguments", "--formatter", "json", "--quiet")
        bindings = sorted(
            (b["source_name"], b["destination_name"], b["destination_kind"], b["routing_key"], sorted(table(b["arguments"]).items()))
            for b in json.loads(listed)
            if b["source_name"]
        )
        # What the scenario declares (from the engine's own reading of it).
        want_queues = {q["name"]: q["arguments"] for q in defs["queues"]}
        want_exchanges = {x["name"]: x["type"] for x in defs["exchanges"]}
        want_bindings = sorted(
            (b["source"], b["destination"], b["destination_type"], b["routing_key"], sorted(b["arguments"].items())) for b in defs["bindings"]
        )
        engine_queues = [q["name"] for q in json.loads(subprocess.run([binary, "run", str(scenario_path), "--until-ms", "0"], capture_output=True, text=True).stdout)["queues"]]
        ok = (queues == want_queues and exchanges == want_exchanges and bindings == want_bindings
              and set(queues) <= set(engine_queues))
        print(f"{'same' if ok else 'DIFFERS':7} definitions of {pid}: {len(queues)} queues, {len(exchanges)} exchanges, {len(bindings)} bindings")
        if not ok:
            failures += 1
            print("  broker:", queues, exchanges, bindings)
            print("  export:", want_queues, want_exchanges, want_bindings)
        admin = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", PORT)).channel()
        for q in queues:
            admin.queue_delete(q)
        for x in exchanges:
            admin.exchange_delete(x)
        admin.connection.close()
    return failures


def scenario_path_of(binary, pid):
    import subprocess
    import tempfile

    path = Path(tempfile.gettempdir()) / f"brokerlab-{pid}.json"
    path.write_text(subprocess.run([binary, "show", pid], capture_output=True, text=True, check=True).stdout)
    return path


def main():
    args = sys.argv[1:]
    binary = args[0]
    only = args[args.index("--only") + 1] if "--only" in args else None
    markdown = args[args.index("--markdown") + 1] if "--markdown" in args else None
    rows, failures = [], 0
    for path in sorted((HERE / "timelines").glob("*.json")):
        if only and only not in path.stem:
            continue
        scenario = json.loads(path.read_text())
        ours = by_consumer(engine(binary, path))
        theirs = by_consumer(Broker(scenario).run())
        same = ours == theirs
        diffs = [k for k in ours if ours[k] != theirs[k]]
        rows.append((path.stem, scenario.get("description", ""), same, diffs, ours, theirs))
        print(f"{'same' if same else 'DIFFERS':7} {path.stem}" + ("" if same else f"  ({', '.join(diffs)})"))
        if not same:
            failures += 1
            print("  engine:", json.dumps(ours))
            print("  broker:", json.dumps(theirs))
    if markdown:
        write_markdown(Path(markdown), rows)
    print(f"{len(rows) - failures} of {len(rows)} timelines: engine == broker")
    if not only:
        failures += definitions(binary)
    sys.exit(1 if failures else 0)


def write_markdown(path, rows):
    text = path.read_text() if path.exists() else ""
    head = text.split("<!-- table -->")[0] if "<!-- table -->" in text else text
    lines = [head.rstrip() + "\n\n<!-- table -->\n", "| timeline | what it checks | engine == broker |", "|---|---|---|"]
    for name, desc, same, diffs, _, _ in rows:
        lines.append(f"| `{name}` | {desc} | {'yes' if same else 'no: ' + ', '.join(diffs)} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
