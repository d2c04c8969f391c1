"""The files an ONNX graph's tensors read besides the graph (their external data), found without
onnx: a walk over the protobuf wire format of just the messages that can hold a tensor
(onnx.proto), so the runtime stays onnx-free and can hash every file before ONNX Runtime opens it.
"""

from __future__ import annotations

from collections.abc import Iterator

MODEL, TRAINING, FUNCTION, GRAPH, NODE, ATTRIBUTE, SPARSE, TENSOR, ENTRY = range(9)
# message -> {field number: the message that field holds}, for each field on a way to a tensor:
# a graph's initializers, node attributes (Constant's value, subgraphs of If and Loop), sparse
# tensors, functions and training graphs; a tensor's external_data entries are (key, value).
FIELDS = {
    MODEL: {7: GRAPH, 20: TRAINING, 25: FUNCTION},
    TRAINING: {1: GRAPH, 2: GRAPH},
    FUNCTION: {7: NODE, 11: ATTRIBUTE},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    TENSOR: {13: ENTRY},
    ENTRY: {},
}
KEY, VALUE = 1, 2  # StringStringEntryProto's fields


def external_data_locations(model: bytes) -> list[str]:
    """The `location` of every tensor's external data in a serialized ModelProto, each once, in
    the order met. ValueError where the bytes are not protobuf."""
    found: dict[str, None] = {}
    # A stack, not recursion: a hostile graph may nest subgraphs deeper than Python recurses.
    stack = [(memoryview(model), MODEL)]
    while stack:
        view, kind = stack.pop()
        if kind == ENTRY:
            entry = dict(_fields(view))
            if entry.get(KEY) == b"location":
                found[bytes(entry.get(VALUE, b"")).decode("utf-8", "replace")] = None
            continue
        stack.extend((value, FIELDS[kind][number]) for number, value in _fields(view)
                     if number in FIELDS[kind] and value is not None)
    return list(found)


def _fields(view: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """(field number, bytes of a length-delimited field or None) for each field of a message."""
    i = 0
    while i < len(view):
        key, i = _varint(view, i)
        number, wire = key >> 3, key & 7
        value = None
        if wire == 0:
            i = _varint(view, i)[1]
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        elif wire == 2:
            size, i = _varint(view, i)
            value, i = view[i:i + size], i + size
        else:  # groups: proto2's, which ONNX never writes
            raise ValueError(f"field {number} has wire type {wire}")
        if i > len(view):
            raise ValueError(f"field {number} runs past the end of its message")
        yield number, value


def _varint(view: memoryview, i: int) -> tuple[int, int]:
    """The varint at `i` and the index after it."""
    value = 0
    for shift in range(0, 70, 7):
        if i >= len(view):
            raise ValueError("a number runs past the end of its message")
        byte = view[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
    raise ValueError("a number is longer than ten bytes")
