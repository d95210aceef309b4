"""The M/M/c model of benches/mmc.rs (Poisson arrivals at 9/s, 10 servers, exponential service
at 1/s, one FIFO queue), in SimPy or Ciw, for the comparison in scripts/bench.sh. Prints one
JSON line like the Rust benchmark: messages per second of wall time (best of 3) and the mean
wait in the queue, beside Erlang C's value for the same model.

    python mmc.py simpy|ciw [MESSAGES]
"""
import json
import math
import random
import sys
import time

LAMBDA, MU, C = 9.0, 1.0, 10


def erlang_c_wait_s(lam=LAMBDA, mu=MU, c=C):
    """Mean wait in the queue of an M/M/c queue (Erlang C), in seconds."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def simpy_run(n, seed):
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=C)
    waits = []

    def customer():
        arrived = env.now
        with servers.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.expovariate(MU))

    def arrivals():
        for _ in range(n):
            env.process(customer())
            yield env.timeout(rng.expovariate(LAMBDA))

    env.process(arrivals())
    env.run()
    return sum(waits) / len(waits)


def ciw_run(n, seed):
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=LAMBDA)],
        service_distributions=[ciw.dists.Exponential(rate=MU)],
        number_of_servers=[C],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(n, method="Finish")
    records = sim.get_all_records()
    return sum(r.waiting_time for r in records) / len(records)


def main():
    tool = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    run = {"simpy": simpy_run, "ciw": ciw_run}[tool]
    best, wait = math.inf, None
    runs = 7  # best of 7, as for the engine
    for seed in range(1, runs + 1):
        start = time.perf_counter()
        wait = run(n, seed)
        best = min(best, time.perf_counter() - start)
    version = __import__(tool).__version__
    print(json.dumps({
        "target": f"{tool} {version}", "messages": n, "best_of": runs, "seconds": best,
        "messages_per_s": n / best, "mean_wait_ms": wait * 1000, "erlang_c_wait_ms": erlang_c_wait_s() * 1000,
    }))


if __name__ == "__main__":
    main()
