#!/usr/bin/env python3
"""Floods a running notary to see what its memory does (session 45; benchmarks/*-floods.txt).

  scripts/flood-notary.py http PORT CALLS [nums|objs]   CALLS connections at once, each posting an
      8 MiB JSON batch to /v1/notarise/batch: `nums` {"requests":[{"inputs":[0,0,...]}]},
      `objs` {"requests":[{},{},...]}; prints the answers' status lines, counted.
  scripts/flood-notary.py grpc PORT CALLS [BYTES]       CALLS unary Notarise calls at once on one
      connection, each a BYTES-byte message (default 4,000,000) that is no request; prints the
      gRPC codes, counted. Needs `pip install grpcio`.

Read the notary's peak with `grep VmHWM /proc/PID/status` before and after."""
import collections, socket, sys, threading

def http_flood(port, calls, kind):
    size = 8 * 1024 * 1024 - 64
    if kind == "objs":
        body = ('{"requests":[' + ",".join(["{}"] * ((size - 20) // 3)) + ']}').encode()
    else:
        body = ('{"requests":[{"inputs":[' + ",".join(["0"] * ((size - 40) // 2)) + ']}]}').encode()
    head = b"POST /v1/notarise/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    answers = collections.Counter()
    def one():
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head % len(body) + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        answers[reply.split(b"\r\n", 1)[0].decode(errors="replace")] += 1
    run(calls, one)
    print(dict(answers))

def grpc_flood(port, calls, size):
    import grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
    call = channel.unary_unary("/hawser.v1.Notary/Notarise", request_serializer=None, response_deserializer=None)
    payload = b"\x0a" + b"\xff" * (size - 1)  # field 1 with a length that never ends
    codes = collections.Counter()
    def one():
        try:
            call(payload, timeout=60)
            codes["OK"] += 1
        except grpc.RpcError as error:
            codes[error.code().name] += 1
    run(calls, one)
    print(dict(codes))

def run(calls, one):
    threads = [threading.Thread(target=one) for _ in range(calls)]
    for t in threads: t.start()
    for t in threads: t.join()

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("http", "grpc"):
        sys.exit(__doc__)
    mode, port, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "http":
        http_flood(port, calls, sys.argv[4] if len(sys.argv) > 4 else "nums")
    else:
        grpc_flood(port, calls, int(sys.argv[4]) if len(sys.argv) > 4 else 4_000_000)
