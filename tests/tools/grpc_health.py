#!/usr/bin/python3
"""grpc_health.py ADDR [SERVICE]: asks grpc.health.v1.Health/Check over
plaintext and prints SERVING, NOT_SERVING or UNKNOWN, or the gRPC status code
name when the call fails (NOT_FOUND for an unknown service). The messages are
encoded by hand (field 1 of each), so no generated code is needed."""
import sys

import grpc


def main():
    addr = sys.argv[1]
    service = sys.argv[2] if len(sys.argv) > 2 else ""
    name = service.encode()
    request = (b"\x0a" + bytes([len(name)]) + name) if name else b""
    with grpc.insecure_channel(addr) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = check(request, timeout=5)
        except grpc.RpcError as e:
            print(e.code().name)
            return
    status = reply[1] if len(reply) >= 2 and reply[0] == 0x08 else 0
    print({1: "SERVING", 2: "NOT_SERVING"}.get(status, "UNKNOWN"))


if __name__ == "__main__":
    main()
