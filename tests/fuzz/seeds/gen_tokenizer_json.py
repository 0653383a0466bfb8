#!/usr/bin/env python3
"""Seeds for fuzz_tokenizer_json (tests/fuzz/corpus/tokenizer_json/seed-*): tokenizer.json files in
HuggingFace tokenizers' serialization (model, normalizer, pre_tokenizer, post_processor,
added_tokens), one component variant each over a small WordLevel / BPE / Unigram base, then one
defect each (wrong types, unknown names, bad regex, merges and vocabularies that do not agree,
template ids outside the vocabulary). Standard library only; deterministic.
Usage: /usr/bin/python3 tests/fuzz/seeds/gen_tokenizer_json.py [OUT_DIR]
"""
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seedlib  # noqa: E402

WL = {"model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1, "b": 2, "ab": 3, "[CLS]": 4, "[SEP]": 5},
                "unk_token": "[UNK]"}}
BPE_VOCAB = {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "c": 4, "abc": 5}
BPE = {"model": {"type": "BPE", "vocab": BPE_VOCAB, "merges": [["a", "b"], ["ab", "c"]], "unk_token": "<unk>"}}
UNI = {"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0], ["b", -2.0], ["\u2581", -3.0]]}}


def w(base, **parts):
    d = copy.deepcopy(base)
    for k, v in parts.items():
        d[k] = v
    return d


def model(base, **kv):
    d = copy.deepcopy(base)
    for k, v in kv.items():
        if v is None:
            d["model"].pop(k, None)
        else:
            d["model"][k] = v
    return d


TPL = {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
       "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [4], "tokens": ["[CLS]"]},
                          "[SEP]": {"id": "[SEP]", "ids": [5], "tokens": ["[SEP]"]}}}


def seeds():
    s = {}
    # model types, declared and inferred
    s["bpe-pairs"] = BPE
    s["bpe-strings"] = model(BPE, merges=["a b", "ab c"])
    s["bpe-inferred"] = model(BPE, type=None)
    s["wordpiece-inferred"] = model(w(WL), type=None, continuing_subword_prefix="##")
    s["unigram-inferred"] = model(UNI, type=None)
    s["wordlevel-inferred"] = model(WL, type=None)
    s["model-unknown"] = model(WL, type="Mystery")
    s["bpe-merge-shape"] = model(BPE, merges=[["a"]])
    s["bpe-merge-type"] = model(BPE, merges=[3])
    s["bpe-merge-oov"] = model(BPE, merges=[["a", "z"]])
    s["bpe-merged-oov"] = model(BPE, merges=[["b", "a"]])
    s["bpe-merge-cycle"] = model(w(BPE), vocab={"<unk>": 0, "a": 1, "": 2}, merges=[["a", ""]])
    s["unigram-empty"] = model(UNI, vocab=[])
    s["unigram-entry"] = model(UNI, vocab=[["a"]])
    s["unigram-dup"] = model(UNI, vocab=[["<unk>", 0.0], ["a", -1.0], ["a", -2.0]])
    s["wordlevel-id-type"] = model(WL, vocab={"a": "1"})
    s["unk-type"] = model(WL, unk_token=5)
    # normalizers
    s["norm-sequence"] = w(WL, normalizer={"type": "Sequence", "normalizers": [
        {"type": "NFC"}, {"type": "NFD"}, {"type": "NFKC"}, {"type": "NFKD"}, {"type": "Lowercase"},
        {"type": "StripAccents"}, {"type": "Strip", "strip_left": True, "strip_right": False},
        {"type": "Replace", "pattern": {"String": "a"}, "content": "b"},
        {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
        {"type": "Prepend", "prepend": "\u2581"}]})
    s["norm-bert"] = w(WL, normalizer={"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                       "strip_accents": None, "lowercase": True})
    s["norm-bert-accents-type"] = w(WL, normalizer={"type": "BertNormalizer", "strip_accents": "yes"})
    s["norm-unknown"] = w(WL, normalizer={"type": "Precompiled", "precompiled_charsmap": ""})
    s["norm-strip-type"] = w(WL, normalizer={"type": "Strip", "strip_left": 1})
    s["norm-replace-pattern"] = w(WL, normalizer={"type": "Replace", "pattern": {"Other": "a"}, "content": "b"})
    s["norm-replace-regex"] = w(WL, normalizer={"type": "Replace", "pattern": {"Regex": "(a"}, "content": "b"})
    s["norm-content-type"] = w(WL, normalizer={"type": "Replace", "pattern": {"String": "a"}, "content": 1})
    # pre-tokenizers
    s["pre-sequence"] = w(WL, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Whitespace"}, {"type": "CharDelimiterSplit", "delimiter": "-"},
        {"type": "Digits", "individual_digits": True}, {"type": "Punctuation", "behavior": "Isolated"},
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": False},
        {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithNext", "invert": True},
        {"type": "BertPreTokenizer"},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]})
    s["pre-metaspace-never"] = w(UNI, pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never"})
    s["pre-metaspace-bad"] = w(UNI, pre_tokenizer={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "sometimes"})
    s["pre-metaspace-char"] = w(UNI, pre_tokenizer={"type": "Metaspace", "replacement": "ab"})
    s["pre-chardelim-missing"] = w(WL, pre_tokenizer={"type": "CharDelimiterSplit"})
    s["pre-unknown"] = w(WL, pre_tokenizer={"type": "UnicodeScripts"})
    s["pre-behavior"] = w(WL, pre_tokenizer={"type": "Split", "pattern": {"String": "a"}, "behavior": "Sideways"})
    s["pre-regex"] = w(WL, pre_tokenizer={"type": "Split", "pattern": {"Regex": "[a"}, "behavior": "Isolated"})
    s["pre-digits-type"] = w(WL, pre_tokenizer={"type": "Digits", "individual_digits": "yes"})
    # post-processors
    s["post-sequence"] = w(WL, post_processor={"type": "Sequence", "processors": [
        {"type": "ByteLevel", "trim_offsets": False, "add_prefix_space": False}, TPL]})
    s["post-bert"] = w(WL, post_processor={"type": "BertProcessing", "sep": ["[SEP]", 5], "cls": ["[CLS]", 4]})
    s["post-roberta"] = w(WL, post_processor={"type": "RobertaProcessing", "sep": ["[SEP]", 5], "cls": ["[CLS]", 4],
                                              "trim_offsets": True, "add_prefix_space": True})
    s["post-pair-shape"] = w(WL, post_processor={"type": "BertProcessing", "sep": ["[SEP]"], "cls": ["[CLS]", 4]})
    s["post-id-range"] = w(WL, post_processor={"type": "BertProcessing", "sep": ["[SEP]", 99], "cls": ["[CLS]", 4]})
    s["post-unknown"] = w(WL, post_processor={"type": "Mystery"})
    s["post-sequence-type"] = w(WL, post_processor={"type": "Sequence", "processors": {}})
    bad = copy.deepcopy(TPL)
    bad["single"] = [{"Other": {}}]
    s["tpl-item"] = w(WL, post_processor=bad)
    bad = copy.deepcopy(TPL)
    bad["pair"] = [{"Sequence": {"id": "C", "type_id": 0}}]
    s["tpl-seq-id"] = w(WL, post_processor=bad)
    bad = copy.deepcopy(TPL)
    bad["single"] = [{"SpecialToken": {"id": "[MASK]", "type_id": 0}}]
    s["tpl-special-missing"] = w(WL, post_processor=bad)
    bad = copy.deepcopy(TPL)
    bad["special_tokens"]["[CLS]"]["ids"] = [77]
    s["tpl-id-range"] = w(WL, post_processor=bad)
    # added tokens
    s["added"] = w(WL, added_tokens=[{"id": 6, "content": "<x>", "special": True, "lstrip": True, "rstrip": False,
                                      "normalized": False, "single_word": False}])
    s["added-conflict"] = w(WL, added_tokens=[{"id": 1, "content": "zz", "special": True}])
    s["added-type"] = w(WL, added_tokens=[{"id": "1", "content": "a"}])
    out = {k: json.dumps(v).encode() for k, v in s.items()}
    out["json-trailing"] = json.dumps(WL).encode() + b" ]"
    out["json-cut"] = json.dumps(WL).encode()[:-3]
    return out


def main():
    seedlib.write_seeds("tokenizer_json", seeds())


if __name__ == "__main__":
    main()
