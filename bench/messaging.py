"""Messages per second end to end through a three-step recipe, with publisher confirms.

For each backend (RabbitMQ, embedded) and prefetch, two runs in the same process:

- ``bare``: a client loop with no framework: a feeder publishes N bodies to queue 1; stage
  threads consume queue i, publish the body to queue i+1 (confirmed, on a separate
  publishing connection) and ack; the last stage acks and counts. RabbitMQ: py-amqp on the
  same kind of queues (quorum) cryolive declares. Embedded: cryolive's in-process broker
  driven directly (bytes, no envelope, recipe or middleware).
- ``bare`` (last row): the same loop on kombu's ``memory://`` transport, the in-memory
  client the issue proposed (cryolive's embedded broker replaces it, see docs/messaging.md).
- ``cryolive``: ``start_recipe`` N times on ``src/cryolive/recipes/echo-3step.json``, three Workers
  (one per step), envelopes validated, middleware (logs, metrics, retries) in place.

Rate = N / (time from the first publish to the last message handled at step 3), after one
warm-up message; bare and cryolive runs alternate ``--rounds`` times and the medians are kept
(the machine is shared, its load varies). Each cell: median (min-max); the ratio column
also gives the range of the per-round ratios.

Usage: ``python bench/messaging.py [--amqp URL] [-n N] [--prefetch 1 50]``

``--rate R [R ...]`` (the facility model, docs/deployment.md): instead, cryolive on RabbitMQ
paced at R messages per second (a recipe start every 3/R s: three messages each) for
``--seconds``: messages/s delivered, latency from the start to the third step (p50/p95), and
the CPU seconds per 1,000 messages of this process (publisher + three workers) and of the
broker (``beam.smp``'s ``/proc`` counters, when readable: the broker's share at that rate).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import amqp

from cryolive.messaging import (
    Context,
    Service,
    Transport,
    Worker,
    load_recipe,
    open_transport,
    start_recipe,
)
from cryolive.messaging._amqp import connect, connection_params
from cryolive.messaging.echo import EchoMessage, EchoResult, echo
from cryolive.messaging.recipe import recipe_path

RECIPE = recipe_path("echo-3step")


def _bare_rabbit(url: str, n: int, prefetch: int) -> float:
    params = connection_params(url)
    names = [f"bench-bare-{uuid.uuid4().hex[:6]}.{i}" for i in (1, 2, 3)]
    admin = connect(params, confirm=False, heartbeat=0)
    channel = admin.channel()
    for name in names:
        channel.queue_declare(name, durable=True, auto_delete=False,
                              arguments={"x-queue-type": "quorum"})  # fmt: skip
    done = threading.Event()
    stop = threading.Event()
    count = [0]

    def stage(i: int) -> None:
        conn = connect(params, confirm=False, heartbeat=0)
        pub = connect(params, confirm=True, heartbeat=0).channel() if i < 2 else None
        ch = conn.channel()
        ch.basic_qos(0, prefetch, False)

        def on_message(msg: amqp.Message) -> None:
            if pub is not None:
                pub.basic_publish(amqp.Message(msg.body, delivery_mode=2), exchange="",
                                  routing_key=names[i + 1])  # fmt: skip
            ch.basic_ack(msg.delivery_tag)
            if pub is None:
                count[0] += 1
                if count[0] == n:
                    done.set()

        ch.basic_consume(names[i], callback=on_message)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=0.2)
        conn.close()
        if pub is not None:
            pub.connection.close()

    threads = [threading.Thread(target=stage, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    feeder = connect(params, confirm=True, heartbeat=0).channel()
    n += 1  # one warm-up message through all three stages before the clock starts
    feeder.basic_publish(amqp.Message(b"warm-up", delivery_mode=2), exchange="",
                         routing_key=names[0])  # fmt: skip
    while count[0] < 1:
        time.sleep(0.001)
    start = time.perf_counter()
    for i in range(n - 1):
        feeder.basic_publish(amqp.Message(f"m{i}".encode(), delivery_mode=2), exchange="",
                             routing_key=names[0])  # fmt: skip
    done.wait(600)
    elapsed = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    feeder.connection.close()
    n -= 1
    for name in names:
        channel.queue_delete(name)
    admin.close()
    return n / elapsed


def _bare_embedded(n: int, prefetch: int) -> float:
    transport = open_transport(f"memory://bench-{uuid.uuid4().hex[:6]}")
    done, stop = threading.Event(), threading.Event()
    count = [0]

    def stage(i: int) -> None:
        def on_message(delivery: object) -> None:
            body: bytes = delivery.body  # type: ignore[attr-defined]
            if i < 2:
                transport.publish(f"q{i + 2}", body)
            delivery.ack()  # type: ignore[attr-defined]
            if i == 2:
                count[0] += 1
                if count[0] == n:
                    done.set()

        transport.consume(f"q{i + 1}", on_message, prefetch=prefetch, stop=stop)

    threads = [threading.Thread(target=stage, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    n += 1
    transport.publish("q1", b"warm-up")
    while count[0] < 1:
        time.sleep(0.001)
    start = time.perf_counter()
    for i in range(n - 1):
        transport.publish("q1", f"m{i}".encode())
    done.wait(600)
    n -= 1
    elapsed = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    transport.delete_declared()
    return n / elapsed


def _bare_kombu_memory(n: int) -> float:
    """The loop of ``_bare_embedded`` on kombu's ``memory://`` transport (SimpleQueue)."""
    from kombu import Connection

    names = [f"kombu-{uuid.uuid4().hex[:6]}.{i}" for i in (1, 2, 3)]
    done, stop = threading.Event(), threading.Event()
    count = [0]
    options = {"polling_interval": 0.001}  # the default (1 s) idles a stage between messages

    def stage(i: int) -> None:
        with Connection("memory://", transport_options=options) as conn:
            source = conn.SimpleQueue(names[i])
            target = conn.SimpleQueue(names[i + 1]) if i < 2 else None
            while not stop.is_set():
                try:
                    msg = source.get(block=True, timeout=0.2)
                except source.Empty:
                    continue
                if target is not None:
                    target.put(msg.body)
                msg.ack()
                if target is None:
                    count[0] += 1
                    if count[0] == n:
                        done.set()

    threads = [threading.Thread(target=stage, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    with Connection("memory://") as conn:
        feed = conn.SimpleQueue(names[0])
        n += 1
        feed.put("warm-up")
        while count[0] < 1:
            time.sleep(0.001)
        start = time.perf_counter()
        for i in range(n - 1):
            feed.put(f"m{i}")
        done.wait(600)
        n -= 1
        elapsed = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    return n / elapsed


def _cryolive(transport: Transport, n: int, prefetch: int) -> float:
    recipe = load_recipe(RECIPE)
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def last(message: EchoMessage, context: Context) -> EchoResult:
        with lock:
            count[0] += 1
            if count[0] == n:
                done.set()
        return echo(message, context)

    workers = [
        Worker(transport, Service("echo", EchoMessage, echo), queues=[q], prefetch=prefetch)
        for q in ("echo.1", "echo.2")
    ] + [
        Worker(transport, Service("echo", EchoMessage, last), queues=["echo.3"], prefetch=prefetch)
    ]
    for w in workers:
        w.start()
    n += 1
    start_recipe(transport, recipe, {"text": "warm-up"})
    while count[0] < 1:
        time.sleep(0.001)
    start = time.perf_counter()
    for i in range(n - 1):
        start_recipe(transport, recipe, {"text": f"m{i}"})
    done.wait(600)
    n -= 1
    elapsed = time.perf_counter() - start
    for w in workers:
        w.stop()
    transport.delete_declared()
    transport.close()
    return n / elapsed


def _proc_cpu(name: str) -> float | None:
    """CPU seconds (user + system) of the first process whose command is ``name``."""
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != name:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / tick
    return None


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _paced(transport: Transport, rate: float, seconds: float) -> dict[str, float]:
    """cryolive through the 3-step recipe at ``rate`` messages/s (a start every 3/rate s)."""
    recipe = load_recipe(RECIPE)
    latencies: list[float] = []
    lock = threading.Lock()

    def last(message: EchoMessage, context: Context) -> EchoResult:
        with lock:
            latencies.append(time.time() - float(message.text))
        return echo(message, context)

    workers = [
        Worker(transport, Service("echo", EchoMessage, echo), queues=[q], prefetch=50)
        for q in ("echo.1", "echo.2")
    ] + [Worker(transport, Service("echo", EchoMessage, last), queues=["echo.3"], prefetch=50)]
    for w in workers:
        w.start()
    starts = int(rate * seconds / 3)
    broker, own = _proc_cpu("beam.smp"), _self_cpu()
    begin = time.perf_counter()
    for i in range(starts):
        time.sleep(max(0.0, begin + i * 3 / rate - time.perf_counter()))
        start_recipe(transport, recipe, {"text": repr(time.time())})
    deadline = time.monotonic() + 120
    while len(latencies) < starts and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - begin
    broker_after, own_after = _proc_cpu("beam.smp"), _self_cpu()
    for w in workers:
        w.stop()
    transport.delete_declared()
    transport.close()
    thousands = 3 * starts / 1000
    lat = sorted(latencies)
    return {
        "offered": rate,
        "delivered": 3 * len(lat) / elapsed,
        "p50": lat[len(lat) // 2] if lat else float("nan"),
        "p95": lat[int(len(lat) * 0.95)] if lat else float("nan"),
        "own_cpu": (own_after - own) / thousands,
        "broker_cpu": (broker_after - broker) / thousands
        if broker is not None and broker_after is not None
        else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("-n", type=int, default=1000, help="messages per RabbitMQ run")
    parser.add_argument("--embedded-n", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; median kept")
    parser.add_argument("--no-rabbitmq", action="store_true")
    parser.add_argument("--rate", type=float, nargs="+", help="paced messages/s (RabbitMQ)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of a paced run")
    args = parser.parse_args()

    def fresh(url: str) -> Transport:
        return open_transport(url, prefix=f"bench-{uuid.uuid4().hex[:6]}.")

    if args.rate:
        print(
            f"# load average {os.getloadavg()[0]:.1f}; cryolive on RabbitMQ, 3-step recipe, "
            f"prefetch 50, {args.seconds:g} s a rate"
        )
        print(
            "| offered msg/s | delivered msg/s | p50 latency s | p95 latency s "
            "| cryolive CPU s / 1k msg | broker CPU s / 1k msg | broker share of a core |"
        )
        print("|---|---|---|---|---|---|---|")
        for rate in args.rate:
            r = _paced(fresh(args.amqp), rate, args.seconds)
            print(
                f"| {r['offered']:.0f} | {r['delivered']:.1f} | {r['p50']:.3f} | {r['p95']:.3f} "
                f"| {r['own_cpu']:.2f} | {r['broker_cpu']:.2f} "
                f"| {r['broker_cpu'] * r['delivered'] / 1000:.1%} |",
                flush=True,
            )
        return

    embedded_url = f"memory://bench-{uuid.uuid4().hex[:6]}"
    cases: list[tuple[str, int, int, Callable[[], float], Callable[[], float]]] = [
        ("RabbitMQ", p, args.n,
         functools.partial(_bare_rabbit, args.amqp, args.n, p),
         functools.partial(lambda p: _cryolive(fresh(args.amqp), args.n, p), p))
        for p in ([] if args.no_rabbitmq else args.prefetch)
    ]  # fmt: skip
    m = args.embedded_n
    cases.append(
        ("embedded", 1, m,
         functools.partial(_bare_embedded, m, 1),
         lambda: _cryolive(fresh(embedded_url), m, 1))
    )  # fmt: skip
    cases.append(
        ("embedded vs kombu memory://", 1, m,
         functools.partial(_bare_kombu_memory, m),
         lambda: _cryolive(fresh(embedded_url), m, 1))
    )  # fmt: skip
    print("| backend | prefetch | messages | bare client msg/s | cryolive msg/s | cryolive/bare |")
    print("|---|---|---|---|---|---|")
    for backend, prefetch, n, bare, ours in cases:
        bare_rates, our_rates = [], []
        for _ in range(args.rounds):  # alternate, so both see the same machine load
            bare_rates.append(bare())
            our_rates.append(ours())
        b, o = statistics.median(bare_rates), statistics.median(our_rates)
        ratios = sorted(x / y for x, y in zip(our_rates, bare_rates, strict=True))
        print(
            f"| {backend} | {prefetch} | {n}"
            f" | {b:.0f} ({min(bare_rates):.0f}-{max(bare_rates):.0f})"
            f" | {o:.0f} ({min(our_rates):.0f}-{max(our_rates):.0f}) | {o / b:.0%}"
            f" (pairs {ratios[0]:.0%}-{ratios[-1]:.0%}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
