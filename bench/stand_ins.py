"""Loopback stand-ins for bench/telemetry.sh and bench/instructions.sh.

  python3 bench/stand_ins.py otlp PORT
      an OTLP/HTTP endpoint that accepts and discards everything
  python3 bench/stand_ins.py kinesis PORT [COUNT_FILE]
      a minimal PutRecords endpoint answering like Kinesis (every record
      written); with COUNT_FILE, the number of records received so far is
      kept in that file
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK_RESULT = b'{"SequenceNumber":"1","ShardId":"shardId-000000000000"}'


class Otlp(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class Kinesis(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count_file = None
    received = 0
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        # Counted without parsing: every record has exactly one
        # PartitionKey, and frames cannot contain that quoted name (their
        # data is base64). Parsing 36,000 records/s in Python took a
        # quarter of a core from the servers it shares the machine with.
        n = body.count(b'"PartitionKey"')
        if Kinesis.count_file:
            with Kinesis.lock:
                Kinesis.received += n
                with open(Kinesis.count_file, "w") as f:
                    f.write(str(Kinesis.received))
        out = (b'{"FailedRecordCount":0,"Records":['
               + b",".join([OK_RESULT] * n) + b"]}")
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    handler = {"otlp": Otlp, "kinesis": Kinesis}[kind]
    if kind == "kinesis" and len(sys.argv) > 3:
        Kinesis.count_file = sys.argv[3]
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
