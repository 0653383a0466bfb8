#!/usr/bin/env python3
"""Seeds for fuzz_serve_request (tests/fuzz/corpus/serve_request/seed-*): one byte that picks the
route (byte % 4: 0 OpenAI /v1/embeddings, 1 TEI /embed, 2 /tokenize, 3 /similarity) and the
client batch limit (1 + byte >> 4), then the JSON body (tests/fuzz/fuzz_serve_request.c). Valid
bodies of each API (OpenAI and TEI documented shapes), then one defect each. The fuzz
tokenizer's vocabulary is 13 tokens and the maximum input length 16.
Standard library only; deterministic.
Usage: /usr/bin/python3 tests/fuzz/seeds/gen_serve_request.py [OUT_DIR]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seedlib  # noqa: E402

OPENAI, EMBED, TOKENIZE, SIM = 0, 1, 2, 3
BIG = 0xF0  # + route: batch limit 16
LONG = "hello world " * 12  # 24 words: over the 16-token limit


def req(route, body, limit=BIG):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    return bytes([(limit & 0xF0) | route]) + b


def seeds():
    s = {
        "openai-all-fields": req(OPENAI, {"input": ["a b", "hello"], "model": "m", "encoding_format": "base64",
                                          "dimensions": 4, "truncate": True, "truncation_direction": "left"}),
        "openai-model-type": req(OPENAI, {"input": "a", "model": 3}),
        "openai-format": req(OPENAI, {"input": "a", "encoding_format": "hex"}),
        "openai-format-type": req(OPENAI, {"input": "a", "encoding_format": 1}),
        "openai-dimensions-0": req(OPENAI, {"input": "a", "dimensions": 0}),
        "openai-dimensions-big": req(OPENAI, {"input": "a", "dimensions": 9}),
        "openai-dimensions-type": req(OPENAI, {"input": "a", "dimensions": "4"}),
        "openai-ids-long": req(OPENAI, {"input": [list(range(5, 13)) * 3]}),
        "openai-ids-long-cut": req(OPENAI, {"input": [list(range(5, 13)) * 3], "truncate": True}),
        "openai-ids-vocab": req(OPENAI, {"input": [[5, 99]]}),
        "openai-ids-negative": req(OPENAI, {"input": [[-1]]}),
        "openai-ids-mixed": req(OPENAI, {"input": ["a", [5, 6]]}),
        "openai-array-bad": req(OPENAI, {"input": [1.5]}),
        "openai-empty-ids": req(OPENAI, {"input": [[]]}),
        "openai-flat-ids": req(OPENAI, {"input": [5, 6, 7]}),
        "embed-long": req(EMBED, {"inputs": LONG}),
        "embed-long-cut": req(EMBED, {"inputs": LONG, "truncate": True}),
        "embed-long-cut-left": req(EMBED, {"inputs": [LONG, "a"], "truncate": True, "truncation_direction": "LEFT"}),
        "embed-direction-bad": req(EMBED, {"inputs": "a", "truncation_direction": "up"}),
        "embed-direction-type": req(EMBED, {"inputs": "a", "truncation_direction": 1}),
        "embed-normalize-type": req(EMBED, {"inputs": "a", "normalize": "yes"}),
        "embed-truncate-null": req(EMBED, {"inputs": "a", "truncate": None, "normalize": False}),
        "embed-batch": req(EMBED, {"inputs": ["a"] * 3}, limit=0x10),
        "embed-not-object": req(EMBED, b"[\"a\"]"),
        "embed-trailing": req(EMBED, b"{\"inputs\": \"a\"} x"),
        "embed-trailing-ws": req(EMBED, b"{\"inputs\": \"a\"} \r\n\t"),
        "embed-cut-body": req(EMBED, b"{\"inputs\": [\"a\""),
        "embed-bad-json": req(EMBED, b"{\"inputs\": ]"),
        "embed-unicode": req(EMBED, {"inputs": "caf\u00e9 \u6211 \U0001f600"}),
        "tokenize-ids": req(TOKENIZE, {"inputs": [[5, 6]]}),
        "tokenize-special": req(TOKENIZE, {"inputs": ["hello world"], "add_special_tokens": False}),
        "tokenize-special-type": req(TOKENIZE, {"inputs": "a", "add_special_tokens": 0}),
        "sim-pairs": req(SIM, {"pairs": [["a", "b"], ["hello", "world"]]}),
        "sim-pairs-empty": req(SIM, {"pairs": []}),
        "sim-pairs-shape": req(SIM, {"pairs": [["a"]]}),
        "sim-pairs-type": req(SIM, {"pairs": [["a", 1]]}),
        "sim-pairs-batch": req(SIM, {"pairs": [["a", "b"]] * 3}, limit=0x10),
        "sim-source": req(SIM, {"inputs": {"source_sentence": "a", "sentences": ["b", "hello"]}}),
        "sim-source-type": req(SIM, {"inputs": {"source_sentence": "a", "sentences": ["b", 2]}}),
        "sim-source-missing": req(SIM, {"inputs": {"sentences": ["b"]}}),
        "sim-source-batch": req(SIM, {"inputs": {"source_sentence": "a", "sentences": ["b"] * 4}}, limit=0x10),
        "sim-nothing": req(SIM, {"x": 1}),
    }
    return s


def main():
    seedlib.write_seeds("serve_request", seeds())


if __name__ == "__main__":
    main()
