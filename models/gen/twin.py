"""A plain-PyTorch twin of HuggingFace's BertModel (post-LN BERT), with HF parameter names.

Used as the oracle for sembed's converters, runtime and trainer. Run with /usr/bin/python3
(Debian's python3-torch). No transformers dependency: the module tree reproduces HF's names
exactly (embeddings.word_embeddings.weight, encoder.layer.0.attention.self.query.weight, ...).

Shapes (real models): bert-tiny L2 H128 A2 I512; MiniLM-L6 L6 H384 A12 I1536; bert-base L12 H768 A12 I3072.
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "bert-tiny": dict(num_layers=2, hidden_size=128, num_heads=2, intermediate_size=512),
    "minilm-l6": dict(num_layers=6, hidden_size=384, num_heads=12, intermediate_size=1536),
    "bert-base": dict(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072),
}


class Config:
    def __init__(self, vocab_size=30522, hidden_size=128, num_layers=2, num_heads=2,
                 intermediate_size=512, max_position_embeddings=512, type_vocab_size=2,
                 layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout=0.1, attention_dropout=0.1,
                 position_offset=0, relative_attention_num_buckets=0):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        # RoBERTa / XLM-R: a sequence's first position id is padding_idx + 1 (HF computes
        # cumsum(mask) * mask + padding_idx, which is that for every real token of an input).
        self.position_offset = position_offset
        # MPNet: a [buckets, heads] bias shared by all layers, indexed by the bucket of key - query.
        self.relative_attention_num_buckets = relative_attention_num_buckets

    def hf_config(self):
        """config.json contents as HuggingFace writes them for BertModel (RobertaModel when
        position_offset > 0: pad_token_id = position_offset - 1)."""
        if self.relative_attention_num_buckets:
            cfg = self._bert_config()
            for k in ("type_vocab_size", "position_embedding_type"):
                cfg.pop(k)
            cfg.update({"architectures": ["MPNetModel"], "model_type": "mpnet", "pad_token_id": self.position_offset - 1,
                        "bos_token_id": 0, "eos_token_id": 2,
                        "relative_attention_num_buckets": self.relative_attention_num_buckets})
            return cfg
        if self.position_offset:
            cfg = self._bert_config()
            cfg.update({"architectures": ["RobertaModel"], "model_type": "roberta",
                        "pad_token_id": self.position_offset - 1, "bos_token_id": 0, "eos_token_id": 2})
            return cfg
        return self._bert_config()

    def _bert_config(self):
        return {
            "architectures": ["BertModel"], "model_type": "bert",
            "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size, "layer_norm_eps": self.layer_norm_eps,
            "hidden_act": {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}[self.hidden_act],
            "hidden_dropout_prob": self.hidden_dropout,
            "attention_probs_dropout_prob": self.attention_dropout,
            "initializer_range": 0.02, "pad_token_id": 0, "position_embedding_type": "absolute",
        }


def act_fn(name):
    if name == "gelu":
        return lambda x: F.gelu(x)
    if name == "gelu_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(name)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        if c.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout)
        self.position_offset = c.position_offset

    def forward(self, ids, tt):
        pos = torch.arange(ids.shape[1]).unsqueeze(0) + self.position_offset
        x = self.word_embeddings(ids) + self.position_embeddings(pos)
        if hasattr(self, "token_type_embeddings"):
            x = x + self.token_type_embeddings(tt)
        return self.dropout(self.LayerNorm(x))


class SelfAttn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.nh = c.num_heads
        self.dropout = nn.Dropout(c.attention_dropout)

    def forward(self, x, mask_add):
        B, T, C = x.shape
        hd = C // self.nh
        q = self.query(x).view(B, T, self.nh, hd).transpose(1, 2)
        k = self.key(x).view(B, T, self.nh, hd).transpose(1, 2)
        v = self.value(x).view(B, T, self.nh, hd).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask_add
        p = self.dropout(torch.softmax(s, dim=-1))
        return (p @ v).transpose(1, 2).reshape(B, T, C)


class Out(nn.Module):
    def __init__(self, c, n_in):
        super().__init__()
        self.dense = nn.Linear(n_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout)

    def forward(self, h, res):
        return self.LayerNorm(self.dropout(self.dense(h)) + res)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", SelfAttn(c))
        self.output = Out(c, c.hidden_size)

    def forward(self, x, mask_add):
        return self.output(getattr(self, "self")(x, mask_add), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.act = act_fn(c.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Out(c, c.intermediate_size)

    def forward(self, x, mask_add):
        a = self.attention(x, mask_add)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c.num_layers)])
        if c.relative_attention_num_buckets:
            self.relative_attention_bias = nn.Embedding(c.relative_attention_num_buckets, c.num_heads)


def relative_position_bucket(rel, num_buckets=32, max_distance=128):
    """MPNet's bucketing of key - query distances (T5-style, both directions), on int64 tensors,
    the log step in float32 as the reference computes it."""
    ret = 0
    n = -rel
    num_buckets //= 2
    ret = ret + (n < 0).to(torch.long) * num_buckets
    n = torch.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(is_small, n, large)


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c, with_pooler=True):
        super().__init__()
        self.config = c
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        if with_pooler:
            self.pooler = Pooler(c)

    def forward(self, ids, tt=None, mask=None):
        """Returns (last_hidden [B,T,H], all hidden states list incl. embeddings, pooler or None)."""
        if tt is None:
            tt = torch.zeros_like(ids)
        if mask is None:
            mask = torch.ones_like(ids)
        mask_add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        if hasattr(self.encoder, "relative_attention_bias"):
            T = ids.shape[1]
            rel = torch.arange(T)[None, :] - torch.arange(T)[:, None]  # key - query
            bucket = relative_position_bucket(rel, self.config.relative_attention_num_buckets)
            mask_add = mask_add + self.encoder.relative_attention_bias(bucket).permute(2, 0, 1).unsqueeze(0)
        x = self.embeddings(ids, tt)
        hs = [x]
        for layer in self.encoder.layer:
            x = layer(x, mask_add)
            hs.append(x)
        pooled = self.pooler(x) if hasattr(self, "pooler") else None
        return x, hs, pooled


def random_model(shape="bert-tiny", vocab_size=30522, seed=0, with_pooler=True, std=0.02, **kw):
    """A BertModel with N(0, std) weights (biases and LayerNorm also randomised a little so that
    converters cannot pass by accident with zeros/ones)."""
    args = dict(SHAPES[shape]) if isinstance(shape, str) else dict(shape)
    args.update(kw)
    c = Config(vocab_size=vocab_size, **args)
    torch.manual_seed(seed)
    m = BertModel(c, with_pooler=with_pooler)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("relative_attention_bias.weight"):
                p.normal_(0.0, 1.0)  # large enough that a wrong bucket shows
            elif name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias") or name.endswith("LayerNorm.bias"):
                p.copy_(0.02 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    m.eval()
    return m


def pool(last, hs, pooled, mask, mode):
    """sembed's poolers, as SimCSE and sentence-transformers define them."""
    m = mask.unsqueeze(-1).float()
    if mode == "cls":
        return pooled if pooled is not None else last[:, 0]
    if mode == "cls_before_pooler":
        return last[:, 0]
    if mode == "mean":
        return (last * m).sum(1) / m.sum(1)
    if mode == "max":
        return last.masked_fill(m == 0, torch.finfo(torch.float32).min).max(1).values
    if mode == "first_last_avg":
        # SimCSE: average of the embedding-layer output ("first") and the last layer, masked mean
        return ((hs[0] + hs[-1]) / 2.0 * m).sum(1) / m.sum(1)
    raise ValueError(mode)
