#!/usr/bin/env python3
"""A grpc-core client for tests/grpcio.rs: Python's grpcio with its DEFAULT channel options
over `unix:<socket>`, so it sends the socket path, percent-encoded, as :authority (grpc-core
1.57 on). Makes generic calls with hand-encoded protobuf bytes (no code generator): Version
twice on one channel (the second call's headers refer to the first's in the HPACK dynamic
table), PullImage then ListImages (request and response bodies), and ContainerStatus of an
unknown container (an error status in the trailers). Prints one JSON object; exits 1 with the
call and its status when a call fails unexpectedly.

Usage: grpcio_client.py SOCKET_PATH
"""

import json
import sys

import grpc

RUNTIME = "/runtime.v1.RuntimeService/"
IMAGES = "/runtime.v1.ImageService/"
IMAGE = "docker.io/library/busybox:1.36"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited field (string, bytes or message)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def parse(data):
    """A message's fields: number -> list of values (bytes for length-delimited, int for
    varints)."""
    fields, i = {}, 0

    def read_varint():
        nonlocal i
        value, shift = 0, 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = read_varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            value = read_varint()
        elif kind == 2:
            length = read_varint()
            value, i = data[i : i + length], i + length
        elif kind == 1:
            value, i = data[i : i + 8], i + 8
        elif kind == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {kind}")
        fields.setdefault(number, []).append(value)
    return fields


def text(fields, number):
    return fields.get(number, [b""])[0].decode()


def call(channel, method, request, **kwargs):
    stub = channel.unary_unary(
        method,
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    return stub(request, timeout=10, **kwargs)


def main():
    socket = sys.argv[1]
    out = {"grpcio": grpc.__version__}
    method = None
    try:
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            method = RUNTIME + "Version"
            versions = []
            for metadata in [None, [("x-anycri-test", "second call")]]:
                reply = parse(call(channel, method, field(1, "v1"), metadata=metadata))
                versions.append({"runtime_name": text(reply, 2), "api": text(reply, 4)})
            out["version"] = versions

            method = IMAGES + "PullImage"
            reply = parse(call(channel, method, field(1, field(1, IMAGE))))
            out["image_ref"] = text(reply, 1)

            method = IMAGES + "ListImages"
            reply = parse(call(channel, method, b""))
            images = [parse(image) for image in reply.get(1, [])]
            out["images"] = [
                {"id": text(i, 1), "tags": [t.decode() for t in i.get(2, [])]}
                for i in images
            ]

            method = RUNTIME + "ContainerStatus"
            try:
                call(channel, method, field(1, "no-such-container"))
                out["unknown_container"] = "OK"
            except grpc.RpcError as e:
                out["unknown_container"] = e.code().name
    except grpc.RpcError as e:
        print(f"{method}: {e.code().name}: {e.details()}", file=sys.stderr)
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
