"""A Python service as apilog meets it: confluent-kafka (librdkafka) with its AvroSerializer and the registry's
Confluent API, keyed by API name. Used by test/integration/interopPython.test.ts.

    avro_producer.py --brokers B --registry URL --topic T --schema api_call.v1.avsc --codec zstd --count N
                     --seed S [--partitioner murmur2_random]

Writes N events with compression.type=CODEC, then prints one JSON line per event it sent (ts in epoch
milliseconds, event_id as text) and, last, {"placed": {api: partition}} from the delivery reports.
Exit 1 if any delivery failed.
"""
import argparse
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

APIS = ["orders.create", "users.get", "paiements.créer", "検索.list", "search.list", "carts.update"]
STATUSES = [200, 201, 204, 404, 409, 503]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def events(seed, count, codec):
    rnd = random.Random(seed)
    start = datetime(2026, 11, 7, 12, 0, 0, tzinfo=timezone.utc)
    for i in range(count):
        api = rnd.choice(APIS)
        failed = rnd.random() < 0.2
        yield {
            "event_id": uuid.UUID(int=rnd.getrandbits(128), version=4),
            "ts": start + timedelta(milliseconds=i * 37 + rnd.randrange(37)),
            "api": api,
            "method": rnd.choice(["GET", "POST", "PATCH"]),
            "route": "/v1/ünïcode/{id}",
            "path": f"/v1/ünïcode/{i}",
            "status": rnd.choice(STATUSES),
            "latency_us": 2**40 + i,
            "request_bytes": rnd.randrange(2**40),
            "response_bytes": 0,
            "service": f"python-{codec}",
            "instance": "python-0",
            "environment": "prod",
            "client_id": "clïent-ß" if rnd.random() < 0.5 else None,
            "client_ip": "2001:db8::1" if rnd.random() < 0.5 else None,
            "user_id": None,
            "tenant_id": "tenant-ø" if rnd.random() < 0.3 else None,
            "trace_id": uuid.UUID(int=rnd.getrandbits(128)).hex if rnd.random() < 0.5 else None,
            "span_id": None,
            "error_class": "TimeoutError" if failed else None,
            "error_message": "Zeitüberschreitung nach 2 s 😀" if failed else None,
            "attributes": {"región": "eu-west-1", "emoji": "🚀", "empty": ""} if rnd.random() < 0.5 else {},
        }


def as_json(event):
    out = dict(event)
    out["event_id"] = str(event["event_id"])
    out["ts"] = (event["ts"] - EPOCH) // timedelta(milliseconds=1)
    return out


def main():
    parser = argparse.ArgumentParser()
    for name in ("--brokers", "--registry", "--topic", "--schema", "--codec"):
        parser.add_argument(name, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--partitioner", default=None, help="librdkafka partitioner (default: librdkafka's own)")
    args = parser.parse_args()

    with open(args.schema, encoding="utf-8") as f:
        schema = f.read()
    serializer = AvroSerializer(SchemaRegistryClient({"url": args.registry}), schema)
    config = {
        "bootstrap.servers": args.brokers,
        "compression.type": args.codec,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
    }
    if args.partitioner:
        config["partitioner"] = args.partitioner
    producer = Producer(config)
    context = SerializationContext(args.topic, MessageField.VALUE)
    placed, failures, sent = {}, [], []

    def delivered(error, message):
        if error is not None:
            failures.append(str(error))
        else:
            placed.setdefault(message.key().decode("utf-8"), set()).add(message.partition())

    for event in events(args.seed, args.count, args.codec):
        producer.produce(args.topic, key=event["api"].encode("utf-8"), value=serializer(event, context), on_delivery=delivered)
        producer.poll(0)
        sent.append(as_json(event))
    left = producer.flush(30)
    if left or failures:
        print(f"{left} undelivered, failures: {failures[:3]}", file=sys.stderr)
        sys.exit(1)
    for event in sent:
        print(json.dumps(event, ensure_ascii=False))
    print(json.dumps({"placed": {api: sorted(p) for api, p in placed.items()}}, ensure_ascii=False))


if __name__ == "__main__":
    main()
