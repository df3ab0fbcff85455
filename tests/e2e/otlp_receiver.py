"""A test OTLP/HTTP receiver: decodes what netwho sends with the
OpenTelemetry project's own protobuf definitions (the opentelemetry-proto
package, an implementation independent of netwho's encoder) and writes one
JSON line per log record or metric data point.

    otlp_receiver.py --out FILE [--fail-first N]

Listens on 127.0.0.1 (a free port, printed as {"ready": true, "port": P},
and as "listening on P" on standard error).
The first N requests are answered 503 with Retry-After: 1 (the exporter
must send them again, and nothing twice).
"""

import argparse
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind) if kind else None


def attributes(kvs):
    out = {}
    for kv in kvs:
        assert kv.key not in out, f"attribute {kv.key} twice"
        out[kv.key] = value(kv.value)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        if self.server.requests <= self.server.fail_first:
            self.answer(503, extra=[("Retry-After", "1")])
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.headers.get("Content-Type") == "application/x-protobuf"
        lines = []
        if self.path.endswith("/v1/logs"):
            req = logs_service_pb2.ExportLogsServiceRequest()
            req.ParseFromString(body)
            for rl in req.resource_logs:
                res = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for lr in sl.log_records:
                        lines.append({
                            "signal": "log",
                            "path": self.path,
                            "resource": res,
                            "scope": sl.scope.name,
                            "time": lr.time_unix_nano,
                            "observed": lr.observed_time_unix_nano,
                            "severity": lr.severity_number,
                            "event_name": lr.event_name,
                            "body": value(lr.body),
                            "attributes": attributes(lr.attributes),
                        })
            reply = logs_service_pb2.ExportLogsServiceResponse()
        elif self.path.endswith("/v1/metrics"):
            req = metrics_service_pb2.ExportMetricsServiceRequest()
            req.ParseFromString(body)
            for rm in req.resource_metrics:
                res = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        assert m.WhichOneof("data") == "sum", m.name
                        for p in m.sum.data_points:
                            lines.append({
                                "signal": "metric",
                                "path": self.path,
                                "resource": res,
                                "name": m.name,
                                "unit": m.unit,
                                "temporality": m.sum.aggregation_temporality,
                                "monotonic": m.sum.is_monotonic,
                                "start": p.start_time_unix_nano,
                                "time": p.time_unix_nano,
                                "value": p.as_int,
                                "attributes": attributes(p.attributes),
                            })
            reply = metrics_service_pb2.ExportMetricsServiceResponse()
        else:
            self.answer(404)
            return
        with open(self.server.out, "a") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        self.answer(200, reply.SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    a = ap.parse_args()
    srv = HTTPServer(("127.0.0.1", 0), Handler)
    srv.out, srv.fail_first, srv.requests = a.out, a.fail_first, 0
    print(json.dumps({"ready": True, "port": srv.server_address[1]}), flush=True)
    print(f"listening on {srv.server_address[1]}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
