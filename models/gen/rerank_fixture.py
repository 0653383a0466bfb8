#!/usr/bin/python3
"""Cross-encoder fixtures for `sembed rerank`: random-weight sequence-classification checkpoints in
HuggingFace layout, and the PyTorch twin's scores for one query against a list of documents.

    /usr/bin/python3 models/gen/rerank_fixture.py --out DIR [--shape bert-tiny] [--vocab small|real]

DIR/
  ce-bert/       BertForSequenceClassification, one label, sentence-transformers CrossEncoder config
                 (sbert_ce_default_activation_function = Sigmoid): "bert." names, pooler + classifier
  ce-bert3/      BertForSequenceClassification with three labels (an NLI cross-encoder: raw logits)
  ce-xlmr/       XLMRobertaForSequenceClassification, one label, no activation key (CrossEncoder's
                 default for one label is Sigmoid): "roberta." names, positions past padding_idx 1,
                 one token type, classifier.dense + classifier.out_proj (RobertaClassificationHead)
  expected.json  {query, docs, models: {name: {num_labels, activation, logits: [[...] per doc]}}}

The heads follow transformers' definitions (modeling_bert.BertForSequenceClassification: dropout ->
Linear on the pooled output; modeling_roberta.RobertaClassificationHead: x[:, 0] -> dense -> tanh ->
out_proj). Ids come from golden.py's exact-for-ASCII BERT tokenizer, [CLS] q [SEP] d [SEP] with
token types 0/1 (all 0 for the one-type XLM-R body), so the body and head are tested apart from
tokenizer differences. The XLM-R folder carries a WordPiece vocabulary for the same reason.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import make_fixtures as mf  # noqa: E402
import twin  # noqa: E402

QUERY = "how do i bake bread at home"
DOCS = [
    "a simple recipe for baking bread in your kitchen oven",
    "the stock market fell sharply on monday",
    "bread needs flour, water, salt and yeast",
    "a man is playing a guitar on the street",
    "knead the dough and let it rise for two hours before baking",
    "the weather will be sunny tomorrow",
    "home made bread tastes better than bread from the store",
]


def head_weights(c, n_labels, kind, seed):
    g = torch.Generator().manual_seed(seed)
    H = c.hidden_size
    if kind == "bert":
        return {"classifier.weight": torch.randn(n_labels, H, generator=g) / H ** 0.5,
                "classifier.bias": 0.1 * torch.randn(n_labels, generator=g)}
    return {"classifier.dense.weight": torch.randn(H, H, generator=g) / H ** 0.5,
            "classifier.dense.bias": 0.05 * torch.randn(H, generator=g),
            "classifier.out_proj.weight": torch.randn(n_labels, H, generator=g) / H ** 0.5,
            "classifier.out_proj.bias": 0.1 * torch.randn(n_labels, generator=g)}


def logits(m, head, kind, ids, tt, mask):
    with torch.no_grad():
        last, _, pooled = m(ids, tt, mask)
        if kind == "bert":
            return pooled @ head["classifier.weight"].t() + head["classifier.bias"]
        x = torch.tanh(last[:, 0] @ head["classifier.dense.weight"].t() + head["classifier.dense.bias"])
        return x @ head["classifier.out_proj.weight"].t() + head["classifier.out_proj.bias"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", default="bert-tiny", choices=sorted(twin.SHAPES))
    ap.add_argument("--vocab", default="real", choices=["small", "real"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    vocab = mf.load_vocab(a.vocab)
    vid = {t: i for i, t in enumerate(vocab)}
    q = golden.encode(QUERY, vid)
    expected = {"query": QUERY, "docs": DOCS, "models": {}}
    variants = [("ce-bert", "bert", 1, "torch.nn.modules.activation.Sigmoid", a.seed),
                ("ce-bert3", "bert", 3, None, a.seed + 1),
                ("ce-xlmr", "roberta", 1, None, a.seed + 2)]
    for name, kind, n_labels, act, seed in variants:
        rob = kind == "roberta"
        m = twin.random_model(a.shape, vocab_size=len(vocab), seed=seed, std=0.05, with_pooler=not rob,
                              type_vocab_size=1 if rob else 2, position_offset=2 if rob else 0,
                              max_position_embeddings=514 if rob else 512)
        head = head_weights(m.config, n_labels, kind, seed + 100)
        rows = [golden.model_input(q, golden.encode(d, vid), vid, 512) for d in DOCS]
        T = max(len(r[0]) for r in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        tt = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (x, t) in enumerate(rows):
            ids[i, :len(x)] = torch.tensor(x)
            tt[i, :len(x)] = 0 if rob else torch.tensor(t)
            mask[i, :len(x)] = 1
        lg = logits(m, head, kind, ids, tt, mask)
        d = mf.mkdir(a.out, name)
        cfg = m.config.hf_config()
        cfg["architectures"] = ["XLMRobertaForSequenceClassification" if rob else "BertForSequenceClassification"]
        if rob:
            cfg["model_type"] = "xlm-roberta"
        cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(n_labels)}
        cfg["label2id"] = {f"LABEL_{i}": i for i in range(n_labels)}
        if act:
            cfg["sbert_ce_default_activation_function"] = act
        mf.write_config(d, cfg)
        mf.write_tokenizer(d, vocab, max_len=512)
        prefix = "roberta." if rob else "bert."
        sd = {prefix + k: v.detach().clone() for k, v in m.state_dict().items()}
        sd.update(head)
        mf.write_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
        activation = "sigmoid" if n_labels == 1 else "identity"
        expected["models"][name] = {"num_labels": n_labels, "activation": activation, "logits": lg.tolist()}
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
