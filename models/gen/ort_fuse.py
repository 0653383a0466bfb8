"""Write a BERT graph in the fused form that ONNX Runtime's transformer optimizer produces
(com.microsoft contrib operators, ContribOperators.md), from the twin's model.safetensors:

    ids32 = Cast(input_ids); seg32 = Cast(token_type_ids); mask32 = Cast(attention_mask)
    h, mask_index = EmbedLayerNormalization(ids32, seg32, word, pos, type, gamma, beta, mask32)
    per layer:
      ctx = Attention(h, W_qkv [H, 3H], b_qkv [3H], mask_index, num_heads)   # packed Q|K|V
      h1  = SkipLayerNormalization(MatMul(ctx, Wo^T), h, gamma, beta, bo)
      a   = BiasGelu(MatMul(h1, Wi^T), bi)         (FastGelu(., bi) for a gelu_tanh model)
      h   = SkipLayerNormalization(MatMul(a, Wout^T), h1, gamma, beta, bout)
    pooler_output = Tanh(Gemm(Gather(h, 0, axis=1), Wp, bp, transB=1))

ONNX Runtime's C++ graph optimizer (models/gen/ort_optimize.js) fuses only part of a
torch.onnx.export graph (LayerNormalization, BiasGelu, FusedMatMul, FusedGemm: see docs/onnx.md);
this writes the remaining fused operators so the importer is tested on every one of them. Check the
result runs in ORT and matches the plain export with models/gen/ort_compare.js.

    /usr/bin/python3 models/gen/ort_fuse.py DIR/model.safetensors DIR/config.json OUT.onnx
"""
import json
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from quantize_dynamic import read_safetensors  # noqa: E402

MS = "com.microsoft"


def main():
    st_path, cfg_path, out = sys.argv[1:4]
    w = read_safetensors(st_path)
    cfg = json.load(open(cfg_path))
    L, H, nh = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    act = cfg["hidden_act"]
    inits, nodes = [], []

    def init(name, a):
        inits.append(numpy_helper.from_array(np.array(a, dtype=a.dtype, order="C"), name))
        return name

    for n in ("input_ids", "token_type_ids", "attention_mask"):
        nodes.append(helper.make_node("Cast", [n], [n + "_int32"], to=TensorProto.INT32))
    e = "embeddings."
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids_int32", "token_type_ids_int32", init("word", w[e + "word_embeddings.weight"]),
         init("pos", w[e + "position_embeddings.weight"]), init("type", w[e + "token_type_embeddings.weight"]),
         init("emb_gamma", w[e + "LayerNorm.weight"]), init("emb_beta", w[e + "LayerNorm.bias"]), "attention_mask_int32"],
        ["h0", "mask_index"], domain=MS, epsilon=eps))
    h = "h0"
    for i in range(L):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        wq = np.concatenate([w[a + f"self.{k}.weight"].T for k in ("query", "key", "value")], axis=1)
        bq = np.concatenate([w[a + f"self.{k}.bias"] for k in ("query", "key", "value")])
        nodes.append(helper.make_node("Attention", [h, init(f"qkv_w{i}", wq), init(f"qkv_b{i}", bq), "mask_index"],
                                      [f"ctx{i}"], domain=MS, num_heads=nh))
        nodes.append(helper.make_node("MatMul", [f"ctx{i}", init(f"ao_w{i}", w[a + "output.dense.weight"].T)], [f"ao{i}"]))
        nodes.append(helper.make_node(
            "SkipLayerNormalization",
            [f"ao{i}", h, init(f"ln1_g{i}", w[a + "output.LayerNorm.weight"]), init(f"ln1_b{i}", w[a + "output.LayerNorm.bias"]),
             init(f"ao_b{i}", w[a + "output.dense.bias"])], [f"h1_{i}"], domain=MS, epsilon=eps))
        nodes.append(helper.make_node("MatMul", [f"h1_{i}", init(f"in_w{i}", w[p + "intermediate.dense.weight"].T)], [f"in{i}"]))
        op = {"gelu": "BiasGelu", "gelu_new": "FastGelu"}[act]
        nodes.append(helper.make_node(op, [f"in{i}", init(f"in_b{i}", w[p + "intermediate.dense.bias"])], [f"act{i}"], domain=MS))
        nodes.append(helper.make_node("MatMul", [f"act{i}", init(f"out_w{i}", w[p + "output.dense.weight"].T)], [f"out{i}"]))
        nodes.append(helper.make_node(
            "SkipLayerNormalization",
            [f"out{i}", f"h1_{i}", init(f"ln2_g{i}", w[p + "output.LayerNorm.weight"]), init(f"ln2_b{i}", w[p + "output.LayerNorm.bias"]),
             init(f"out_b{i}", w[p + "output.dense.bias"])], [f"h{i + 1}" if i + 1 < L else "last_hidden_state"], domain=MS, epsilon=eps))
        h = f"h{i + 1}"
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])]
    if "pooler.dense.weight" in w:
        nodes.append(helper.make_node("Gather", ["last_hidden_state", init("zero", np.array(0, dtype=np.int64))], ["cls"], axis=1))
        nodes.append(helper.make_node("Gemm", ["cls", init("pool_w", w["pooler.dense.weight"]), init("pool_b", w["pooler.dense.bias"])],
                                      ["pooled"], transB=1))
        nodes.append(helper.make_node("Tanh", ["pooled"], ["pooler_output"]))
        outputs.append(helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", H]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in ("input_ids", "token_type_ids", "attention_mask")]
    g = helper.make_graph(nodes, "bert_ort_fused", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid(MS, 1)],
                          producer_name="sembed ort_fuse.py")
    onnx.save(m, out)


if __name__ == "__main__":
    main()
