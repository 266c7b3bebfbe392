#!/usr/bin/python3
"""A stand-in for SSM Parameter Store, for the bake's smoke check only.

    smoke-ssm.py PORT

Answers GetParametersByPath (the one call cinemo-bootstrap makes) on
127.0.0.1:PORT with the fixed parameters below, as for an edge internal
host, so that packer/smoke.sh can run the real cinemo-bootstrap.service,
under its real sandbox and seccomp filter, on the build instance: it reads
the region and instance id from the real IMDSv2, writes secrets.env,
collector.env and the TLS files, and checks them against the baked
config/edge.toml (internal.tls.required) with the baked binary, as on any
host. The files are placeholders, never parsed (cinemo is then started
without TLS), and the smoke check removes them. The build instance never
reads a real environment's parameters. Python's standard library only (the
AMI has python3); the request signature is not checked.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PLACEHOLDER = "-----BEGIN SMOKE PLACEHOLDER-----\nc21va2U=\n-----END SMOKE PLACEHOLDER-----\n"
PARAMETERS = {
    "/cinemo/edge/internal/env/CINEMO__LOG__LEVEL": "info",
    "/cinemo/edge/internal/tls/server.crt": PLACEHOLDER,
    "/cinemo/edge/internal/tls/server.key": PLACEHOLDER,
    "/cinemo/edge/internal/tls/client-ca.crt": PLACEHOLDER,
}


class Ssm(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if self.headers.get("x-amz-target") != "AmazonSSM.GetParametersByPath":
            return self.reply(400, {"__type": "InvalidAction", "message": "only GetParametersByPath"})
        path = body.get("Path", "").rstrip("/") + "/"
        found = [{"Name": k, "Value": v, "Type": "SecureString", "Version": 1}
                 for k, v in sorted(PARAMETERS.items()) if k.startswith(path)]
        return self.reply(200, {"Parameters": found})

    def reply(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("smoke-ssm:", fmt % args, file=sys.stderr)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Ssm).serve_forever()
