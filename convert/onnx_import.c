// ONNX import: recover a BERT encoder's parameters from an ONNX graph by matching its topology
// (dataflow between MatMuls, LayerNorms, residual Adds and attention MatMuls), never by tensor
// names. Recognised forms (docs/onnx.md): torch.onnx.export (MatMul on transposed weight + Add,
// decomposed or fused LayerNorm, Gemm), ONNX Runtime fusions (EmbedLayerNormalization, Attention
// with packed QKV, SkipLayerNormalization, LayerNormalization, BiasGelu/FastGelu/Gelu, FusedMatMul,
// FusedGemm), and dynamic int8 quantization (DynamicQuantizeLinear + MatMulInteger + Cast + Mul,
// MatMulIntegerToFloat, DynamicQuantizeMatMul). Operator semantics: onnx/docs/Operators.md and
// onnxruntime/docs/ContribOperators.md.
#define _GNU_SOURCE
#include "convert/onnx_import.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "formats/checked.h"
#include "formats/log.h"
#include "formats/onnx.h"

#define FN "sembed_convert"
#define MAX_LAYERS 256
#define MAX_NODES (1 << 22)
#define MAX_VALUES ((size_t)1 << 26)  // every node output, input and initializer is a value
// A tensor that failed to resolve already logged why; report that first error, not its fallout.
#define FAIL(st, ...) (I->rc ? I->rc : sembed_fail(st, FN, __VA_ARGS__))

struct val {
    const char *name;
    int producer;          // node index or -1
    int init;              // initializer index or -1
    int cnode;             // Constant node index or -1
    bool graph_input;
    int *cons;             // consumer node indices (with repeats if a node reads it twice)
    int n_cons, cap_cons;
    int tstate;            // 0 unresolved, 1 resolved, -1 failed
    struct so_tensor t;    // resolved constant
};

struct lin {
    int vin, vout;         // activation in; output (after the bias Add when there is one)
    int w;                 // weight value
    bool w_in_out;         // stored [in, out]: transpose on import
    int bias;              // value or -1
    int wscale, wzp;       // quantized weights: scale and zero point values (-1 if float)
    int part;              // -1, or 0/1/2 = Q/K/V slice of a packed Attention weight
    int node;              // weight-consuming node, for messages
    bool tanh_act;         // FusedGemm with activation Tanh (ORT's fused pooler)
    bool used;
};

struct lnorm {
    int x1, x2;            // summands (x2 = -1: plain LayerNorm of x1)
    int gamma, beta, bias; // bias: SkipLayerNormalization's optional input 4
    float eps;
    int vout, node;
    bool used;
};

struct out_tensor {        // collected until everything matched, then handed to the source
    char name[96];
    enum sembed_dtype dtype;
    uint32_t n_dims;
    int64_t dims[2];
    const void *data;
    void *owned;
};

struct imp {
    struct so_onnx *m;
    const Onnx__GraphProto *g;
    const char *path;
    struct val *v;
    size_t nv, capv;
    uint32_t *ht;          // open addressing: value index + 1
    size_t htcap;
    int **nin, **nout;     // per node: value index per input/output slot (-1 = absent)
    int *topo;             // node order
    struct lin *lins;
    int nl, capl;
    struct lnorm *lns;
    int nln, capln;
    struct out_tensor *out;
    int nout_t, capout;
    bool quantized, ort_fused, f16_warned;
    int rc;
};

/* ------------------------------------------------------------------ graph index */

static const char *node_op(const struct imp *I, int n) {
    const char *op = I->g->node[n]->op_type;
    return op ? op : "";
}

static const char *node_name(const struct imp *I, int n) {
    const Onnx__NodeProto *p = I->g->node[n];
    if (p->name && *p->name) return p->name;
    if (p->n_output && p->output[0]) return p->output[0];
    return "?";
}

static bool is_op(const struct imp *I, int n, const char *op) { return n >= 0 && !strcmp(node_op(I, n), op); }

static int find_val(const struct imp *I, const char *name) {
    if (!I->htcap) return -1;
    size_t mask = I->htcap - 1, h = (size_t)XXH3_64bits(name, strlen(name)) & mask;
    for (;;) {
        uint32_t e = I->ht[h];
        if (!e) return -1;
        if (!strcmp(I->v[e - 1].name, name)) return (int)(e - 1);
        h = (h + 1) & mask;
    }
}

static int get_val(struct imp *I, const char *name) {
    int i = find_val(I, name);
    if (i >= 0) return i;
    if (I->nv == I->capv) {
        size_t cap = I->capv ? I->capv * 2 : 256, nb;
        if (cap > MAX_VALUES || !ck_array_bytes(cap, sizeof *I->v, &nb)) return -1;
        struct val *nvv = realloc(I->v, nb);
        if (!nvv) return -1;
        I->v = nvv;
        I->capv = cap;
    }
    if ((I->nv + 1) * 2 > I->htcap) {  // keep load <= 1/2
        size_t cap = I->htcap ? I->htcap * 2 : 1024;
        uint32_t *ht = calloc(cap, sizeof *ht);
        if (!ht) return -1;
        for (size_t k = 0; k < I->nv; k++) {
            size_t h = (size_t)XXH3_64bits(I->v[k].name, strlen(I->v[k].name)) & (cap - 1);
            while (ht[h]) h = (h + 1) & (cap - 1);
            ht[h] = (uint32_t)(k + 1);
        }
        free(I->ht);
        I->ht = ht;
        I->htcap = cap;
    }
    struct val *x = &I->v[I->nv];
    memset(x, 0, sizeof *x);
    x->name = name;
    x->producer = x->init = x->cnode = -1;
    size_t h = (size_t)XXH3_64bits(name, strlen(name)) & (I->htcap - 1);
    while (I->ht[h]) h = (h + 1) & (I->htcap - 1);
    I->ht[h] = (uint32_t)(I->nv + 1);
    return (int)I->nv++;
}

static int add_consumer(struct val *x, int node) {
    if (x->n_cons == x->cap_cons) {
        int cap = 4;
        if (x->cap_cons && !ck_mul_int(x->cap_cons, 2, &cap)) return -1;
        int *c = realloc(x->cons, (size_t)cap * sizeof *c);
        if (!c) return -1;
        x->cons = c;
        x->cap_cons = cap;
    }
    x->cons[x->n_cons++] = node;
    return 0;
}

static int in(const struct imp *I, int n, size_t k) {
    return k < I->g->node[n]->n_input ? I->nin[n][k] : -1;
}

static int nin_count(const struct imp *I, int n) { return (int)I->g->node[n]->n_input; }

static int out0(const struct imp *I, int n) { return I->g->node[n]->n_output ? I->nout[n][0] : -1; }

static bool is_const(const struct imp *I, int v) { return v >= 0 && (I->v[v].init >= 0 || I->v[v].cnode >= 0); }

static int producer(const struct imp *I, int v) { return v >= 0 ? I->v[v].producer : -1; }

// The only consumer of v when it has exactly one and it is `op`, else -1.
static int sole_consumer(const struct imp *I, int v, const char *op) {
    if (v < 0 || I->v[v].n_cons != 1) return -1;
    int c = I->v[v].cons[0];
    return is_op(I, c, op) ? c : -1;
}

// Of a binary node's two inputs, the one that is not v (or -1).
static int other_input(const struct imp *I, int n, int v) {
    if (nin_count(I, n) != 2) return -1;
    if (in(I, n, 0) == v) return in(I, n, 1);
    if (in(I, n, 1) == v) return in(I, n, 0);
    return -1;
}

static int build_index(struct imp *I) {
    const Onnx__GraphProto *g = I->g;
    // Node, value and consumer indices are ints (and hash entries uint32): bound the counts the
    // file chooses before any of them is formed. bert-large has about 3000 nodes.
    if (g->n_node > MAX_NODES || g->n_initializer > MAX_NODES || g->n_input > MAX_NODES)
        return FAIL(SEMBED_ETOOLONG, "%s: graph has %zu nodes, %zu initializers, %zu inputs (at most %d each)", I->path, g->n_node, g->n_initializer, g->n_input, MAX_NODES);
    for (size_t i = 0; i < g->n_initializer; i++) {
        const char *nm = g->initializer[i]->name;
        if (!nm || !*nm) return FAIL(SEMBED_ECORRUPT, "%s: initializer %zu has no name", I->path, i);
        int v = get_val(I, nm);
        if (v < 0) return SEMBED_ENOMEM;
        if (I->v[v].init >= 0) return FAIL(SEMBED_EDUPLICATE, "%s: initializer '%s' is defined twice", I->path, nm);
        I->v[v].init = (int)i;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        if (!g->input[i]->name) continue;
        int v = get_val(I, g->input[i]->name);
        if (v < 0) return SEMBED_ENOMEM;
        if (I->v[v].init < 0) I->v[v].graph_input = true;  // an initializer listed as input stays a constant
    }
    size_t nn = g->n_node;
    I->nin = calloc(nn ? nn : 1, sizeof *I->nin);
    I->nout = calloc(nn ? nn : 1, sizeof *I->nout);
    if (!I->nin || !I->nout) return SEMBED_ENOMEM;
    for (size_t n = 0; n < nn; n++) {
        const Onnx__NodeProto *p = g->node[n];
        const char *op = p->op_type ? p->op_type : "";
        if (p->domain && !strcmp(p->domain, "com.microsoft")) I->ort_fused = true;
        if (!strcmp(op, "If") || !strcmp(op, "Loop") || !strcmp(op, "Scan"))
            return FAIL(SEMBED_EUNSUPPORTED, "%s: node '%s' is control flow (%s); a BERT encoder graph has none", I->path, node_name(I, (int)n), op);
        size_t nbi, nbo;
        if (!ck_array_bytes((uint64_t)p->n_input + 1, sizeof(int), &nbi) || !ck_array_bytes((uint64_t)p->n_output + 1, sizeof(int), &nbo))
            return SEMBED_ENOMEM;
        I->nin[n] = malloc(nbi);
        I->nout[n] = malloc(nbo);
        if (!I->nin[n] || !I->nout[n]) return SEMBED_ENOMEM;
        for (size_t k = 0; k < p->n_output; k++) {
            const char *nm = p->output[k];
            I->nout[n][k] = -1;
            if (!nm || !*nm) continue;
            int v = get_val(I, nm);
            if (v < 0) return SEMBED_ENOMEM;
            if (I->v[v].producer >= 0 || I->v[v].init >= 0 || I->v[v].graph_input)
                return FAIL(SEMBED_EDUPLICATE, "%s: value '%s' is produced twice (node '%s'); ONNX graphs assign each value once", I->path, nm, node_name(I, (int)n));
            I->v[v].producer = (int)n;
            I->nout[n][k] = v;
            if (!strcmp(op, "Constant") && k == 0) I->v[v].cnode = (int)n;
        }
    }
    for (size_t n = 0; n < nn; n++) {
        const Onnx__NodeProto *p = g->node[n];
        for (size_t k = 0; k < p->n_input; k++) {
            const char *nm = p->input[k];
            I->nin[n][k] = -1;
            if (!nm || !*nm) continue;  // omitted optional input
            int v = get_val(I, nm);
            if (v < 0 || add_consumer(&I->v[v], (int)n)) return SEMBED_ENOMEM;
            I->nin[n][k] = v;
            const struct val *x = &I->v[v];
            if (x->producer < 0 && x->init < 0 && !x->graph_input)
                return FAIL(SEMBED_EMISSING, "%s: node '%s' (%s) reads '%s', which no node, initializer or graph input provides (missing initializer?)", I->path,
                                   node_name(I, (int)n), node_op(I, (int)n), nm);
        }
    }
    return SEMBED_OK;
}

// Kahn's algorithm; on a cycle, walk predecessors among the unsorted nodes until a node repeats,
// which is then on the cycle, and name it.
static int toposort(struct imp *I) {
    size_t nn = I->g->n_node;
    int *indeg = calloc(nn ? nn : 1, sizeof *indeg), *q = malloc((nn ? nn : 1) * sizeof *q);
    I->topo = malloc((nn ? nn : 1) * sizeof *I->topo);
    if (!indeg || !q || !I->topo) { free(indeg); free(q); return SEMBED_ENOMEM; }
    for (size_t n = 0; n < nn; n++)
        for (int k = 0; k < nin_count(I, (int)n); k++) {
            int v = in(I, (int)n, (size_t)k);
            if (v >= 0 && I->v[v].producer >= 0) indeg[n]++;
        }
    size_t qh = 0, qt = 0, done = 0;
    for (size_t n = 0; n < nn; n++) if (!indeg[n]) q[qt++] = (int)n;
    while (qh < qt) {
        int n = q[qh++];
        I->topo[done++] = n;
        for (size_t k = 0; k < I->g->node[n]->n_output; k++) {
            int v = I->nout[n][k];
            if (v < 0) continue;
            for (int c = 0; c < I->v[v].n_cons; c++)
                if (--indeg[I->v[v].cons[c]] == 0) q[qt++] = I->v[v].cons[c];
        }
    }
    int rc = SEMBED_OK;
    if (done < nn) {
        int n = -1;
        for (size_t i = 0; i < nn; i++) if (indeg[i] > 0) { n = (int)i; break; }
        for (size_t step = 0; step < nn; step++) {  // nn steps from any stuck node end on the cycle
            int next = -1;
            for (int k = 0; k < nin_count(I, n) && next < 0; k++) {
                int p = producer(I, in(I, n, (size_t)k));
                if (p >= 0 && indeg[p] > 0) next = p;
            }
            if (next < 0) break;
            n = next;
        }
        rc = FAIL(SEMBED_ECORRUPT, "%s: the graph has a cycle through node '%s' (%s); %zu of %zu nodes cannot be ordered", I->path, node_name(I, n), node_op(I, n),
                         nn - done, nn);
    }
    free(indeg);
    free(q);
    return rc;
}

/* ------------------------------------------------------------------ constants */

// Resolve constant value v (initializer or Constant node); NULL if v is not a constant or its
// data is bad (then I->rc is set and the reason logged).
static const struct so_tensor *cval(struct imp *I, int v) {
    if (v < 0) return NULL;
    struct val *x = &I->v[v];
    if (x->tstate == 1) return &x->t;
    if (x->tstate == -1) return NULL;
    int rc;
    if (x->init >= 0) {
        rc = so_tensor_get(I->m, I->g->initializer[x->init], &x->t);
    } else if (x->cnode >= 0) {
        const Onnx__NodeProto *p = I->g->node[x->cnode];
        const Onnx__AttributeProto *a = so_node_attr(p, "value");
        const Onnx__AttributeProto *af = so_node_attr(p, "value_float"), *ai = so_node_attr(p, "value_int");
        const Onnx__AttributeProto *afs = so_node_attr(p, "value_floats"), *ais = so_node_attr(p, "value_ints");
        if (a && a->t) {
            rc = so_tensor_get(I->m, a->t, &x->t);
            x->t.name = x->name;
        } else if ((af && af->has_f) || (ai && ai->has_i) || afs || ais) {
            // Exactly one attribute supplies shape, type and bytes (first of value_float, value_int,
            // value_floats, value_ints that is set): mixing them once sized the buffer from one
            // attribute and copied from another (issue 20 audit).
            const void *vals;
            size_t n;
            bool f, scalar = true;
            if (af && af->has_f) { f = true; n = 1; vals = &af->f; }
            else if (ai && ai->has_i) { f = false; n = 1; vals = &ai->i; }
            else if (afs) { f = true; n = afs->n_floats; vals = afs->floats; scalar = false; }
            else { f = false; n = ais->n_ints; vals = ais->ints; scalar = false; }
            memset(&x->t, 0, sizeof x->t);
            x->t.name = x->name;
            x->t.dtype = f ? SO_FLOAT : SO_INT64;
            x->t.elem_size = f ? 4 : 8;
            x->t.n_dims = scalar ? 0 : 1;
            x->t.dims[0] = (int64_t)n;
            x->t.numel = n;
            size_t nb = 0;
            if (n > (uint64_t)SO_MAX_DIM || !ck_array_bytes(n, x->t.elem_size, &nb)) {
                rc = FAIL(SEMBED_EDIMS, "%s: Constant node '%s' has %zu values", I->path, node_name(I, x->cnode), n);
            } else if (!(x->t.owned = malloc(nb ? nb : 1))) {
                rc = SEMBED_ENOMEM;
            } else {
                if (nb) memcpy(x->t.owned, vals, nb);
                x->t.data = x->t.owned;
                rc = SEMBED_OK;
            }
        } else {
            rc = FAIL(SEMBED_EUNSUPPORTED, "%s: Constant node '%s' has no supported value attribute", I->path, node_name(I, x->cnode));
        }
    } else {
        return NULL;
    }
    if (rc) {
        x->tstate = -1;
        if (!I->rc) I->rc = rc;
        return NULL;
    }
    x->tstate = 1;
    return &x->t;
}

static bool scalar_f(struct imp *I, int v, double *out) {
    const struct so_tensor *t = cval(I, v);
    if (!t || t->numel != 1) return false;
    switch (t->dtype) {
    case SO_FLOAT: { float f; memcpy(&f, t->data, 4); *out = f; return true; }
    case SO_INT64: { int64_t i; memcpy(&i, t->data, 8); *out = (double)i; return true; }
    case SO_INT32: { int32_t i; memcpy(&i, t->data, 4); *out = i; return true; }
    default: return false;
    }
}

static bool is_float(const struct so_tensor *t) { return t->dtype == SO_FLOAT || t->dtype == SO_FLOAT16; }

// A 1-D float constant of n elements (biases, LayerNorm gamma/beta).
static const struct so_tensor *vec_const(struct imp *I, int v, int64_t n) {
    const struct so_tensor *t = cval(I, v);
    if (!t || !is_float(t) || (n >= 0 && (int64_t)t->numel != n)) return NULL;
    for (uint32_t d = 0; d + 1 < t->n_dims; d++) if (t->dims[d] != 1) return NULL;
    return t;
}

static const struct so_tensor *mat_const(struct imp *I, int v) {
    if (!is_const(I, v)) return NULL;
    const struct so_tensor *t = cval(I, v);
    return t && t->n_dims == 2 && t->numel > 0 ? t : NULL;
}

// Partial evaluation of small int64 shape vectors (Reshape targets): constants, Concat,
// Unsqueeze/Squeeze/Cast/Identity of constants. Unknown entries get known[i] = false.
static int shape_vec(struct imp *I, int v, int64_t *out, bool *known, int cap, int depth) {
    if (v < 0 || depth > 8) return -1;
    const struct so_tensor *t = is_const(I, v) ? cval(I, v) : NULL;
    if (t) {
        if (t->numel > (uint64_t)cap || (t->dtype != SO_INT64 && t->dtype != SO_INT32)) return -1;
        for (uint64_t i = 0; i < t->numel; i++) {
            if (t->dtype == SO_INT64) memcpy(&out[i], (const char *)t->data + 8 * i, 8);
            else { int32_t x; memcpy(&x, (const char *)t->data + 4 * i, 4); out[i] = x; }
            known[i] = true;
        }
        return (int)t->numel;
    }
    int p = producer(I, v);
    if (p < 0) return -1;
    if (is_op(I, p, "Concat")) {
        int n = 0;
        for (int k = 0; k < nin_count(I, p); k++) {
            int r = shape_vec(I, in(I, p, (size_t)k), out + n, known + n, cap - n, depth + 1);
            if (r < 0) return -1;
            n += r;
        }
        return n;
    }
    if (is_op(I, p, "Unsqueeze") || is_op(I, p, "Squeeze") || is_op(I, p, "Cast") || is_op(I, p, "Identity")) {
        int r = shape_vec(I, in(I, p, 0), out, known, cap, depth + 1);
        if (r >= 0) return r;
        if (is_op(I, p, "Unsqueeze") && cap >= 1) { known[0] = false; return 1; }  // scalar -> [1]
        return -1;
    }
    if (is_op(I, p, "Gather") && cap >= 1) {  // Gather(Shape(x), scalar index) -> one unknown entry
        const struct so_tensor *idx = cval(I, in(I, p, 1));
        if (idx && idx->numel == 1) { known[0] = false; return 1; }
    }
    return -1;
}

/* ------------------------------------------------------------------ pattern recognition */

static int push_lin(struct imp *I, struct lin l) {
    if (I->nl == I->capl) {
        int cap = 64;
        if (I->capl && !ck_mul_int(I->capl, 2, &cap)) return SEMBED_ENOMEM;
        struct lin *p = realloc(I->lins, (size_t)cap * sizeof *p);
        if (!p) return SEMBED_ENOMEM;
        I->lins = p;
        I->capl = cap;
    }
    I->lins[I->nl++] = l;
    return SEMBED_OK;
}

static int push_ln(struct imp *I, struct lnorm l) {
    if (I->nln == I->capln) {
        int cap = 64;
        if (I->capln && !ck_mul_int(I->capln, 2, &cap)) return SEMBED_ENOMEM;
        struct lnorm *p = realloc(I->lns, (size_t)cap * sizeof *p);
        if (!p) return SEMBED_ENOMEM;
        I->lns = p;
        I->capln = cap;
    }
    I->lns[I->nln++] = l;
    return SEMBED_OK;
}

// y -> Add(y, bias) with a 1-D constant bias of `out` elements: absorb it into the linear.
static void absorb_bias(struct imp *I, struct lin *l, int64_t out) {
    int a = sole_consumer(I, l->vout, "Add");
    if (a < 0) return;
    int b = other_input(I, a, l->vout);
    if (is_const(I, b) && vec_const(I, b, out)) {
        l->bias = b;
        l->vout = out0(I, a);
    }
}

static const char *const PASS_OPS[] = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", NULL};

static bool is_pass(const struct imp *I, int n) {
    for (int i = 0; PASS_OPS[i]; i++) if (is_op(I, n, PASS_OPS[i])) return true;
    return false;
}

// MatMulInteger(A, W, a_zp, w_zp) -> Cast(float) -> Mul(., a_scale * w_scale) [-> Add bias], with A
// from DynamicQuantizeLinear(x): the pattern ORT's dynamic quantizer writes.
static int match_matmulinteger(struct imp *I, int n) {
    int w = in(I, n, 1), a = in(I, n, 0);
    const struct so_tensor *wt = mat_const(I, w);
    int dq = producer(I, a);
    if (!wt || !is_op(I, dq, "DynamicQuantizeLinear") || I->nout[dq][0] != a) return SEMBED_OK;
    int ascale = I->g->node[dq]->n_output > 1 ? I->nout[dq][1] : -1;
    int cast = sole_consumer(I, out0(I, n), "Cast");
    if (cast < 0 || so_attr_int(I->g->node[cast], "to", 0) != SO_FLOAT)
        return FAIL(SEMBED_EUNSUPPORTED, "%s: MatMulInteger '%s' is not followed by Cast(to=FLOAT) as in ORT's dynamic quantization", I->path, node_name(I, n));
    int m1 = sole_consumer(I, out0(I, cast), "Mul");
    if (m1 < 0) return FAIL(SEMBED_EUNSUPPORTED, "%s: MatMulInteger '%s': Cast is not followed by Mul by the scales", I->path, node_name(I, n));
    int s = other_input(I, m1, out0(I, cast)), wscale = -1, vout = out0(I, m1);
    int sp = producer(I, s);
    if (is_op(I, sp, "Mul") && other_input(I, sp, ascale) >= 0 && is_const(I, other_input(I, sp, ascale))) {
        wscale = other_input(I, sp, ascale);                        // Mul(a_scale, w_scale) precomputed
    } else if (s == ascale) {                                      // Mul(Mul(y, a_scale), w_scale)
        int m2 = sole_consumer(I, vout, "Mul");
        if (m2 >= 0 && is_const(I, other_input(I, m2, vout))) { wscale = other_input(I, m2, vout); vout = out0(I, m2); }
    } else if (is_const(I, s)) {                                   // Mul(Mul(y, w_scale), a_scale)
        int m2 = sole_consumer(I, vout, "Mul");
        if (m2 >= 0 && other_input(I, m2, vout) == ascale) { wscale = s; vout = out0(I, m2); }
    }
    if (wscale < 0)
        return FAIL(SEMBED_EUNSUPPORTED, "%s: MatMulInteger '%s': cannot find the weight scale (expected Mul by DynamicQuantizeLinear's scale times a constant)", I->path, node_name(I, n));
    struct lin l = {.vin = in(I, dq, 0), .vout = vout, .w = w, .w_in_out = true, .bias = -1, .wscale = wscale,
                    .wzp = in(I, n, 3), .part = -1, .node = n};
    absorb_bias(I, &l, wt->dims[1]);
    I->quantized = true;
    return push_lin(I, l);
}

static int match_linears(struct imp *I) {
    for (size_t i = 0; i < I->g->n_node && !I->rc; i++) {
        int n = I->topo[i];
        const Onnx__NodeProto *p = I->g->node[n];
        int rc = SEMBED_OK;
        if (is_op(I, n, "MatMul") || is_op(I, n, "FusedMatMul")) {
            int w = in(I, n, 1), wp = producer(I, w);
            bool tb = is_op(I, n, "FusedMatMul") && so_attr_int(p, "transB", 0);
            // Weight given as Transpose(constant, perm=[1,0]) when the export was not constant-folded.
            if (!is_const(I, w) && is_op(I, wp, "Transpose") && is_const(I, in(I, wp, 0))) { w = in(I, wp, 0); tb = !tb; }
            const struct so_tensor *wt = mat_const(I, w);
            if (!wt || is_const(I, in(I, n, 0))) continue;
            if (!is_float(wt)) return FAIL(SEMBED_EDTYPE, "%s: MatMul '%s' weight '%s' is %s (expected FLOAT or FLOAT16)", I->path, node_name(I, n), wt->name, so_dtype_name(wt->dtype));
            if (is_op(I, n, "FusedMatMul") && (so_attr_int(p, "transA", 0) || so_attr_float(p, "alpha", 1.0f) != 1.0f))
                return FAIL(SEMBED_EUNSUPPORTED, "%s: FusedMatMul '%s' on a weight with transA or alpha != 1", I->path, node_name(I, n));
            struct lin l = {.vin = in(I, n, 0), .vout = out0(I, n), .w = w, .w_in_out = !tb, .bias = -1, .wscale = -1, .wzp = -1, .part = -1, .node = n};
            absorb_bias(I, &l, tb ? wt->dims[0] : wt->dims[1]);
            rc = push_lin(I, l);
        } else if (is_op(I, n, "Gemm") || is_op(I, n, "FusedGemm")) {
            const struct so_tensor *wt = mat_const(I, in(I, n, 1));
            if (!wt) continue;
            bool tb = so_attr_int(p, "transB", 0) != 0;
            if (so_attr_int(p, "transA", 0) || so_attr_float(p, "alpha", 1.0f) != 1.0f || so_attr_float(p, "beta", 1.0f) != 1.0f)
                return FAIL(SEMBED_EUNSUPPORTED, "%s: Gemm '%s' has transA or alpha/beta != 1", I->path, node_name(I, n));
            if (!is_float(wt)) return FAIL(SEMBED_EDTYPE, "%s: Gemm '%s' weight is %s", I->path, node_name(I, n), so_dtype_name(wt->dtype));
            int64_t o = tb ? wt->dims[0] : wt->dims[1];
            struct lin l = {.vin = in(I, n, 0), .vout = out0(I, n), .w = in(I, n, 1), .w_in_out = !tb, .bias = -1, .wscale = -1, .wzp = -1, .part = -1, .node = n};
            const Onnx__AttributeProto *act = so_node_attr(p, "activation");
            l.tanh_act = act && act->has_s && act->s.len == 4 && !memcmp(act->s.data, "Tanh", 4);
            if (act && act->has_s && !l.tanh_act) return FAIL(SEMBED_EUNSUPPORTED, "%s: FusedGemm '%s' has an activation other than Tanh", I->path, node_name(I, n));
            if (in(I, n, 2) >= 0) {
                if (!vec_const(I, in(I, n, 2), o)) return FAIL(SEMBED_EUNSUPPORTED, "%s: Gemm '%s' bias is not a constant vector of %lld", I->path, node_name(I, n), (long long)o);
                l.bias = in(I, n, 2);
            } else {
                absorb_bias(I, &l, o);
            }
            rc = push_lin(I, l);
        } else if (is_op(I, n, "MatMulInteger")) {
            rc = match_matmulinteger(I, n);
        } else if (is_op(I, n, "MatMulIntegerToFloat") || is_op(I, n, "DynamicQuantizeMatMul")) {
            bool i2f = is_op(I, n, "MatMulIntegerToFloat");
            const struct so_tensor *wt = mat_const(I, in(I, n, 1));
            if (!wt) continue;
            int vin = in(I, n, 0);
            if (i2f) {
                int dq = producer(I, vin);
                if (!is_op(I, dq, "DynamicQuantizeLinear"))
                    return FAIL(SEMBED_EUNSUPPORTED, "%s: MatMulIntegerToFloat '%s': activation is not dynamically quantized", I->path, node_name(I, n));
                vin = in(I, dq, 0);
            }
            struct lin l = {.vin = vin, .vout = out0(I, n), .w = in(I, n, 1), .w_in_out = true, .bias = -1,
                            .wscale = in(I, n, i2f ? 3 : 2), .wzp = in(I, n, i2f ? 5 : 3), .part = -1, .node = n};
            int b = in(I, n, i2f ? 6 : 4);
            if (b >= 0) l.bias = b; else absorb_bias(I, &l, wt->dims[1]);
            I->quantized = true;
            I->ort_fused = true;
            rc = push_lin(I, l);
        } else if (is_op(I, n, "Attention")) {
            // Attention(input, weights [H, 3H], bias [3H], mask_index, ...): packed Q|K|V columns.
            if (so_attr_int(p, "unidirectional", 0))
                return FAIL(SEMBED_EUNSUPPORTED, "%s: Attention '%s' is unidirectional (causal), not a BERT encoder", I->path, node_name(I, n));
            const Onnx__AttributeProto *qkv = so_node_attr(p, "qkv_hidden_sizes");
            if (qkv && qkv->n_ints == 3 && !(qkv->ints[0] == qkv->ints[1] && qkv->ints[1] == qkv->ints[2]))
                return FAIL(SEMBED_EUNSUPPORTED, "%s: Attention '%s' has unequal qkv_hidden_sizes", I->path, node_name(I, n));
            const struct so_tensor *wt = mat_const(I, in(I, n, 1));
            if (!wt || !is_float(wt) || wt->dims[1] % 3 || !vec_const(I, in(I, n, 2), wt->dims[1]))
                return FAIL(SEMBED_EUNSUPPORTED, "%s: Attention '%s': expected constant float weights [H, 3H] and bias [3H]", I->path, node_name(I, n));
            for (int k = 0; k < 3 && !rc; k++) {
                struct lin l = {.vin = in(I, n, 0), .vout = -1, .w = in(I, n, 1), .w_in_out = true, .bias = in(I, n, 2), .wscale = -1, .wzp = -1, .part = k, .node = n};
                rc = push_lin(I, l);
            }
            I->ort_fused = true;
        }
        if (rc) return rc;
    }
    return I->rc;
}

// Decomposed LayerNorm as torch exports it for opset < 17:
//   m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2)); s = Sqrt(Add(v, eps));
//   y = Add(Mul(Div(d, s), gamma), beta)
static int match_decomposed_ln(struct imp *I, int r, struct lnorm *out) {
    int x = in(I, r, 0), mean = out0(I, r), sub = -1;
    for (int c = 0; c < I->v[mean].n_cons; c++) {
        int n = I->v[mean].cons[c];
        if (is_op(I, n, "Sub") && in(I, n, 0) == x && in(I, n, 1) == mean) sub = n;
    }
    if (sub < 0) return 0;
    int d = out0(I, sub), pw = -1, dv = -1;
    for (int c = 0; c < I->v[d].n_cons; c++) {
        int n = I->v[d].cons[c];
        if (is_op(I, n, "Pow") && in(I, n, 0) == d) pw = n;
        if (is_op(I, n, "Div") && in(I, n, 0) == d) dv = n;
    }
    double two;
    if (pw < 0 || dv < 0 || !scalar_f(I, in(I, pw, 1), &two) || two != 2.0) return 0;
    int r2 = sole_consumer(I, out0(I, pw), "ReduceMean");
    int ae = r2 >= 0 ? sole_consumer(I, out0(I, r2), "Add") : -1;
    double eps;
    if (ae < 0 || !scalar_f(I, other_input(I, ae, out0(I, r2)), &eps)) return 0;
    int sq = sole_consumer(I, out0(I, ae), "Sqrt");
    if (sq < 0 || in(I, dv, 1) != out0(I, sq)) return 0;
    int mu = sole_consumer(I, out0(I, dv), "Mul");
    int gamma = mu >= 0 ? other_input(I, mu, out0(I, dv)) : -1;
    int ad = mu >= 0 ? sole_consumer(I, out0(I, mu), "Add") : -1;
    int beta = ad >= 0 ? other_input(I, ad, out0(I, mu)) : -1;
    if (!is_const(I, gamma) || !is_const(I, beta)) return 0;
    *out = (struct lnorm){.x1 = x, .x2 = -1, .gamma = gamma, .beta = beta, .bias = -1, .eps = (float)eps, .vout = out0(I, ad), .node = r};
    return 1;
}

// x = Add(p, q) of two computed values: the residual sum feeding a LayerNorm.
static void split_sum(struct imp *I, struct lnorm *l) {
    int a = producer(I, l->x1);
    if (is_op(I, a, "Add") && !is_const(I, in(I, a, 0)) && !is_const(I, in(I, a, 1))) {
        l->x1 = in(I, a, 0);
        l->x2 = in(I, a, 1);
    }
}

static int match_lns(struct imp *I) {
    for (size_t i = 0; i < I->g->n_node && !I->rc; i++) {
        int n = I->topo[i];
        const Onnx__NodeProto *p = I->g->node[n];
        struct lnorm l;
        int rc = SEMBED_OK;
        if (is_op(I, n, "ReduceMean")) {
            if (!match_decomposed_ln(I, n, &l)) continue;
            split_sum(I, &l);
            rc = push_ln(I, l);
        } else if (is_op(I, n, "LayerNormalization")) {
            int64_t axis = so_attr_int(p, "axis", -1);
            if (axis != -1 && axis != 2)
                return FAIL(SEMBED_EUNSUPPORTED, "%s: LayerNormalization '%s' normalizes axis %lld (expected the last)", I->path, node_name(I, n), (long long)axis);
            l = (struct lnorm){.x1 = in(I, n, 0), .x2 = -1, .gamma = in(I, n, 1), .beta = in(I, n, 2), .bias = -1,
                               .eps = so_attr_float(p, "epsilon", 1e-5f), .vout = out0(I, n), .node = n};
            split_sum(I, &l);
            rc = push_ln(I, l);
        } else if (is_op(I, n, "SkipLayerNormalization")) {
            l = (struct lnorm){.x1 = in(I, n, 0), .x2 = in(I, n, 1), .gamma = in(I, n, 2), .beta = in(I, n, 3), .bias = in(I, n, 4),
                               .eps = so_attr_float(p, "epsilon", 1e-12f), .vout = out0(I, n), .node = n};
            I->ort_fused = true;
            rc = push_ln(I, l);
        }
        if (rc) return rc;
    }
    return I->rc;
}

/* ------------------------------------------------------------------ structure */

struct emb {
    int word, pos, type;     // table values
    int gamma, beta;
    float eps;
    int vout;
    int pos_ids;             // the value indexing the position table (-1: computed inside a fused op)
};

// How the graph computes the position ids that index the position table, walking back from them
// (at most 64 nodes): "" when they count from 0 (BERT: Range(0, T) or a slice of arange), else
// what shifts them: a CumSum over the non-padding mask (HF RoBERTa / XLM-R / MPNet), or a nonzero
// constant added to them or starting their Range (positions past the padding index).
static void position_shift(struct imp *I, int v, char *how, size_t cap) {
    int stack[64], ns = 0, visits = 0;
    char off[80] = "";
    how[0] = 0;
    if (v >= 0) stack[ns++] = v;
    while (ns && visits++ < 64) {
        int x = stack[--ns], p = producer(I, x);
        if (p < 0) continue;  // a graph input (fed position ids: nothing to say) or a constant
        double c = 0;
        if (is_op(I, p, "CumSum")) {  // the strongest evidence: report it whatever else was seen
            snprintf(how, cap, "a CumSum over the input, node '%s'", node_name(I, p));
            return;
        }
        if (!off[0] && (is_op(I, p, "Add") || is_op(I, p, "Sub")) && nin_count(I, p) == 2) {
            for (size_t k = 0; k < 2 && !off[0]; k++)
                if (scalar_f(I, in(I, p, k), &c) && c != 0)
                    snprintf(off, sizeof off, "%s %g, node '%s'", is_op(I, p, "Add") ? "adds" : "subtracts", c, node_name(I, p));
        }
        if (is_op(I, p, "Range")) {  // its inputs are shape arithmetic: only the start matters
            if (!off[0] && scalar_f(I, in(I, p, 0), &c) && c != 0)
                snprintf(off, sizeof off, "a Range from %g, node '%s'", c, node_name(I, p));
            continue;
        }
        // Shape-only ops carry the values of input 0; their other inputs (Slice bounds, Reshape
        // targets, Gather indices) are shape arithmetic whose constants say nothing about positions.
        bool data_only = is_op(I, p, "Slice") || is_op(I, p, "Unsqueeze") || is_op(I, p, "Squeeze") || is_op(I, p, "Reshape") ||
                         is_op(I, p, "Expand") || is_op(I, p, "Gather") || is_op(I, p, "Cast") || is_op(I, p, "Identity");
        for (size_t k = 0; k < (data_only ? 1 : (size_t)nin_count(I, p)) && ns < 64; k++) {
            int u = in(I, p, k);
            if (u >= 0 && !is_const(I, u)) stack[ns++] = u;
        }
    }
    snprintf(how, cap, "%s", off);
}

// Follow an index tensor back through shape-only ops to the graph input it comes from.
static const char *index_origin(const struct imp *I, int v) {
    for (int depth = 0; v >= 0 && depth < 8; depth++) {
        if (I->v[v].graph_input) return I->v[v].name;
        int p = producer(I, v);
        if (p < 0 || !is_pass(I, p)) return NULL;
        v = in(I, p, 0);
    }
    return NULL;
}

static bool name_has(const char *s, const char *w) { return s && strcasestr(s, w) != NULL; }

static int find_embeddings(struct imp *I, struct emb *e) {
    memset(e, 0xff, sizeof *e);
    for (size_t i = 0; i < I->g->n_node; i++) {
        int n = I->topo[i];
        if (!is_op(I, n, "EmbedLayerNormalization")) continue;
        const Onnx__NodeProto *p = I->g->node[n];
        *e = (struct emb){.word = in(I, n, 2), .pos = in(I, n, 3), .type = in(I, n, 4), .gamma = in(I, n, 5), .beta = in(I, n, 6),
                          .eps = so_attr_float(p, "epsilon", 1e-12f), .vout = out0(I, n), .pos_ids = in(I, n, 8)};
        I->ort_fused = true;
        return SEMBED_OK;
    }
    // A LayerNorm whose input is a sum of Gathers from 2-D constant tables.
    for (int li = 0; li < I->nln; li++) {
        struct lnorm *l = &I->lns[li];
        int leaves[8], nleaf = 0, stack[16], ns = 0;
        stack[ns++] = l->x1;
        if (l->x2 >= 0) stack[ns++] = l->x2;
        while (ns && nleaf < 8) {
            int v = stack[--ns], p = producer(I, v);
            if (is_op(I, p, "Add") && !is_const(I, in(I, p, 0)) && !is_const(I, in(I, p, 1)) && ns + 2 <= 16) {
                stack[ns++] = in(I, p, 0);
                stack[ns++] = in(I, p, 1);
            } else {
                leaves[nleaf++] = v;
            }
        }
        int tab[8], idx[8], ng = 0;
        for (int k = 0; k < nleaf; k++) {
            int p = producer(I, leaves[k]);
            const struct so_tensor *t = is_op(I, p, "Gather") && so_attr_int(I->g->node[p], "axis", 0) == 0 ? mat_const(I, in(I, p, 0)) : NULL;
            if (t && is_float(t)) { tab[ng] = in(I, p, 0); idx[ng] = in(I, p, 1); ng++; }
        }
        if (ng < 2) continue;
        if (ng != nleaf)
            return FAIL(SEMBED_EUNSUPPORTED, "%s: the embedding sum before LayerNorm '%s' has %d terms that are not table lookups (a token-type embedding constant-folded away? export with token_type_ids as an input)",
                               I->path, node_name(I, l->node), nleaf - ng);
        // word: the biggest table indexed by a graph input; then position vs token type by the
        // index's input name when it says so, else by size (positions outnumber token types).
        int w = -1;
        for (int k = 0; k < ng; k++) {
            const char *o = index_origin(I, idx[k]);
            if (!o || name_has(o, "position") || name_has(o, "type") || name_has(o, "segment")) continue;
            if (w < 0 || cval(I, tab[k])->dims[0] > cval(I, tab[w])->dims[0]) w = k;
        }
        if (w < 0) return FAIL(SEMBED_EUNSUPPORTED, "%s: no embedding table is indexed by a graph input (input_ids)", I->path);
        e->word = tab[w];
        for (int k = 0; k < ng; k++) {
            if (k == w) continue;
            const char *o = index_origin(I, idx[k]);
            bool is_type = name_has(o, "type") || name_has(o, "segment");
            bool is_pos = name_has(o, "position");
            if (!is_type && !is_pos) {
                int other = -1;
                for (int j = 0; j < ng; j++) if (j != w && j != k) other = j;
                if (other >= 0) is_pos = cval(I, tab[k])->dims[0] > cval(I, tab[other])->dims[0];
                else is_pos = !o;  // a lone extra table: positions are computed, token types are fed
                is_type = !is_pos;
            }
            int *slot = is_pos ? &e->pos : &e->type;
            if (is_pos) e->pos_ids = idx[k];
            if (*slot >= 0) return FAIL(SEMBED_EUNSUPPORTED, "%s: two embedding tables look like %s embeddings", I->path, is_pos ? "position" : "token-type");
            *slot = tab[k];
        }
        if (e->pos < 0) return FAIL(SEMBED_EMISSING, "%s: no position embedding table found in the embedding sum", I->path);
        e->gamma = l->gamma;
        e->beta = l->beta;
        e->eps = l->eps;
        e->vout = l->vout;
        l->used = true;
        return SEMBED_OK;
    }
    return FAIL(SEMBED_EARCH, "%s: no BERT embedding block found (EmbedLayerNormalization, or LayerNorm of summed table lookups)", I->path);
}

// Forward search from v through shape ops and scalings to the first MatMul of two computed
// operands; returns the node and the input slot reached.
static int attn_matmul(struct imp *I, int v, int *slot) {
    int frontier[32], nf = 0, next[32];
    frontier[nf++] = v;
    for (int depth = 0; depth < 8 && nf; depth++) {
        int nn = 0;
        for (int f = 0; f < nf; f++) {
            int x = frontier[f];
            for (int c = 0; c < I->v[x].n_cons; c++) {
                int n = I->v[x].cons[c];
                if ((is_op(I, n, "MatMul") || is_op(I, n, "FusedMatMul")) && !is_const(I, in(I, n, 0)) && !is_const(I, in(I, n, 1))) {
                    *slot = in(I, n, 0) == x ? 0 : 1;
                    return n;
                }
                bool through = ((is_pass(I, n) || is_op(I, n, "Transpose")) && in(I, n, 0) == x) ||
                               ((is_op(I, n, "Div") || is_op(I, n, "Mul")) && is_const(I, other_input(I, n, x)));
                if (through && nn < 32) next[nn++] = out0(I, n);
            }
        }
        memcpy(frontier, next, (size_t)nn * sizeof *next);
        nf = nn;
    }
    return -1;
}

// Does v (backwards through shape ops) come from value `from`?
static bool flows_from(const struct imp *I, int v, int from) {
    for (int depth = 0; v >= 0 && depth < 8; depth++) {
        if (v == from) return true;
        int p = producer(I, v);
        if (p < 0 || !(is_pass(I, p) || is_op(I, p, "Transpose"))) return false;
        v = in(I, p, 0);
    }
    return false;
}

static int lin_by_vout(const struct imp *I, int v) {
    for (int i = 0; i < I->nl; i++) if (!I->lins[i].used && I->lins[i].vout == v && v >= 0) return i;
    return -1;
}

// The residual LayerNorm adding `res` to the output of an unused linear: returns LN index and
// the linear via *li; SkipLayerNormalization's bias completes a bias-less linear.
static int residual_ln(struct imp *I, int res, int *li) {
    for (int k = 0; k < I->nln; k++) {
        struct lnorm *l = &I->lns[k];
        if (l->used || l->x2 < 0 || (l->x1 != res && l->x2 != res)) continue;
        int other = l->x1 == res ? l->x2 : l->x1;
        int j = lin_by_vout(I, other);
        if (j < 0) continue;
        *li = j;
        return k;
    }
    return -1;
}

struct layer {
    int q, k, v, ao, in, out;  // linear indices
    int ln1, ln2;              // lnorm indices
    int heads;
    char act[16];
};

static int classify_act(struct imp *I, struct lin *inter, struct lin *outl, char act[16], int layer) {
    // ORT's bias-fused activations consume the bias-less intermediate MatMul.
    int c = I->v[inter->vout].n_cons == 1 ? I->v[inter->vout].cons[0] : -1;
    if (inter->bias < 0 && (is_op(I, c, "BiasGelu") || is_op(I, c, "FastGelu")) && in(I, c, 1) >= 0) inter->bias = in(I, c, 1);
    bool erf = false, tanh_ = false, relu = false, gelu = false, fast = false;
    int stack[64], ns = 0, seen = 0;
    stack[ns++] = outl->vin;
    while (ns) {
        int v = stack[--ns];
        if (v == inter->vout || is_const(I, v)) continue;
        int p = producer(I, v);
        if (p < 0 || ++seen > 40)
            return FAIL(SEMBED_EUNSUPPORTED, "%s: layer %d: the input of the output dense does not lead back to the intermediate dense", I->path, layer);
        const char *op = node_op(I, p);
        erf |= !strcmp(op, "Erf");
        tanh_ |= !strcmp(op, "Tanh");
        relu |= !strcmp(op, "Relu");
        gelu |= !strcmp(op, "Gelu") || !strcmp(op, "BiasGelu");
        fast |= !strcmp(op, "FastGelu");
        for (int k = 0; k < nin_count(I, p) && ns < 64; k++) if (in(I, p, (size_t)k) >= 0) stack[ns++] = in(I, p, (size_t)k);
    }
    const char *a = NULL;
    if ((erf || gelu) && !tanh_ && !fast && !relu) a = "gelu";
    else if ((tanh_ || fast) && !erf && !gelu && !relu) a = "gelu_tanh";
    else if (relu && !erf && !gelu && !tanh_ && !fast) a = "relu";
    if (!a)
        return FAIL(SEMBED_EUNSUPPORTED, "%s: layer %d: unrecognised activation between the intermediate and output dense (erf %d, tanh %d, relu %d, Gelu %d, FastGelu %d)",
                           I->path, layer, erf, tanh_, relu, gelu, fast);
    snprintf(act, 16, "%s", a);
    return SEMBED_OK;
}

static int num_heads_from_reshape(struct imp *I, int qv, int64_t hidden) {
    int frontier = qv;
    for (int depth = 0; depth < 4; depth++) {
        int r = -1;
        for (int c = 0; c < I->v[frontier].n_cons; c++) if (is_op(I, I->v[frontier].cons[c], "Reshape")) r = I->v[frontier].cons[c];
        if (r >= 0) {
            int64_t s[8];
            bool known[8] = {0};
            int n = shape_vec(I, in(I, r, 1), s, known, 8, 0);
            // The dims are the file's choice: heads * head_dim is computed checked (it overflowed
            // int64 on a fuzzed file, issue 20) and the head count must fit an int.
            int64_t prod, heads = -1;
            if (n == 4 && known[2] && s[2] > 0 && hidden % s[2] == 0 &&
                (!known[3] || (ck_mul_i64(s[2], s[3], &prod) && prod == hidden)))
                heads = s[2];
            else if (n == 4 && known[3] && s[3] > 0 && hidden % s[3] == 0)
                heads = hidden / s[3];
            int h;
            return heads > 0 && ck_i64_to_int(heads, &h) ? h : -1;
        }
        int c = I->v[frontier].n_cons == 1 ? I->v[frontier].cons[0] : -1;
        if (c < 0 || !is_pass(I, c)) return -1;
        frontier = out0(I, c);
    }
    return -1;
}

static int match_layer(struct imp *I, int h, int idx, int64_t hidden, struct layer *L) {
    memset(L, 0xff, sizeof *L);
    L->act[0] = 0;
    int cand[4], nc = 0;
    for (int i = 0; i < I->nl; i++) if (!I->lins[i].used && I->lins[i].vin == h && nc < 4) cand[nc++] = i;
    if (nc == 0) return 0;  // no more layers
    if (nc != 3)
        return FAIL(SEMBED_EARCH, "%s: layer %d: %d linear layers read the hidden state (expected 3: query, key, value)", I->path, idx, nc);
    int context = -1;
    if (I->lins[cand[0]].part >= 0) {  // packed Attention
        for (int k = 0; k < 3; k++) {
            struct lin *l = &I->lins[cand[k]];
            if (l->part == 0) L->q = cand[k]; else if (l->part == 1) L->k = cand[k]; else L->v = cand[k];
        }
        int an = I->lins[cand[0]].node;
        if (!ck_i64_to_int(so_attr_int(I->g->node[an], "num_heads", 0), &L->heads)) L->heads = 0;  // refused below
        context = out0(I, an);
    } else {
        int sn[3], ss[3];
        for (int k = 0; k < 3; k++) {
            sn[k] = attn_matmul(I, I->lins[cand[k]].vout, &ss[k]);
            if (sn[k] < 0) return FAIL(SEMBED_EARCH, "%s: layer %d: linear '%s' does not feed an attention MatMul", I->path, idx, node_name(I, I->lins[cand[k]].node));
        }
        // Q and K meet in the score MatMul (slots 0 and 1); V alone feeds the context MatMul.
        for (int k = 0; k < 3; k++) {
            int same = 0;
            for (int j = 0; j < 3; j++) same += sn[j] == sn[k];
            if (same == 2 && ss[k] == 0) L->q = cand[k];
            else if (same == 2 && ss[k] == 1) L->k = cand[k];
            else if (same == 1 && ss[k] == 1) { L->v = cand[k]; context = out0(I, sn[k]); }
        }
        if (L->q < 0 || L->k < 0 || L->v < 0)
            return FAIL(SEMBED_EARCH, "%s: layer %d: cannot tell query, key and value apart from the attention MatMuls", I->path, idx);
        L->heads = num_heads_from_reshape(I, I->lins[L->q].vout, hidden);
        if (L->heads <= 0)
            return FAIL(SEMBED_EARCH, "%s: layer %d: cannot find the number of heads (no Reshape to [B, T, heads, head_dim] after the query)", I->path, idx);
    }
    I->lins[L->q].used = I->lins[L->k].used = I->lins[L->v].used = true;
    L->ln1 = residual_ln(I, h, &L->ao);
    if (L->ln1 < 0) return FAIL(SEMBED_EARCH, "%s: layer %d: no LayerNorm adds the layer input to an attention output dense", I->path, idx);
    if (context >= 0 && !flows_from(I, I->lins[L->ao].vin, context))
        return FAIL(SEMBED_EARCH, "%s: layer %d: the attention output dense does not read the attention context", I->path, idx);
    I->lins[L->ao].used = true;
    I->lns[L->ln1].used = true;
    int h1 = I->lns[L->ln1].vout;
    nc = 0;
    for (int i = 0; i < I->nl; i++) if (!I->lins[i].used && I->lins[i].vin == h1 && nc < 4) cand[nc++] = i;
    if (nc != 1) return FAIL(SEMBED_EARCH, "%s: layer %d: %d linear layers read the attention output (expected 1: intermediate)", I->path, idx, nc);
    L->in = cand[0];
    I->lins[L->in].used = true;
    L->ln2 = residual_ln(I, h1, &L->out);
    if (L->ln2 < 0) return FAIL(SEMBED_EARCH, "%s: layer %d: no LayerNorm adds the attention output to an output dense", I->path, idx);
    I->lins[L->out].used = true;
    I->lns[L->ln2].used = true;
    int rc = classify_act(I, &I->lins[L->in], &I->lins[L->out], L->act, idx);
    if (rc) return rc;
    // SkipLayerNormalization's bias input belongs to the dense whose output it adds.
    if (I->lns[L->ln1].bias >= 0 && I->lins[L->ao].bias < 0) I->lins[L->ao].bias = I->lns[L->ln1].bias;
    if (I->lns[L->ln2].bias >= 0 && I->lins[L->out].bias < 0) I->lins[L->out].bias = I->lns[L->ln2].bias;
    return 1;
}

// pooler: a linear reading token 0 of the last hidden state (Gather/Slice/Squeeze...) into Tanh.
static int find_pooler(struct imp *I, int h) {
    for (int i = 0; i < I->nl; i++) {
        struct lin *l = &I->lins[i];
        if (l->used || l->part >= 0) continue;
        int v = l->vin;
        bool from_h = false;
        for (int depth = 0; depth < 6 && v >= 0; depth++) {
            if (v == h) { from_h = true; break; }
            int p = producer(I, v);
            if (!(is_pass(I, p) || is_op(I, p, "Gather") || is_op(I, p, "Slice"))) break;
            v = in(I, p, 0);
        }
        if (!from_h) continue;
        if (l->tanh_act || sole_consumer(I, l->vout, "Tanh") >= 0) return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ tensors out */

static int emit(struct imp *I, const char *name, enum sembed_dtype dt, uint32_t nd, int64_t d0, int64_t d1, const void *data, void *owned) {
    if (I->nout_t == I->capout) {
        int cap = 64;
        if (I->capout && !ck_mul_int(I->capout, 2, &cap)) { free(owned); return SEMBED_ENOMEM; }
        struct out_tensor *p = realloc(I->out, (size_t)cap * sizeof *p);
        if (!p) { free(owned); return SEMBED_ENOMEM; }
        I->out = p;
        I->capout = cap;
    }
    struct out_tensor *o = &I->out[I->nout_t++];
    snprintf(o->name, sizeof o->name, "%s", name);
    o->dtype = dt;
    o->n_dims = nd;
    o->dims[0] = d0;
    o->dims[1] = d1;
    o->data = data;
    o->owned = owned;
    return SEMBED_OK;
}

// A constant's data handed over as-is: borrowed from the arena, or ownership moved from the cache
// (the cache keeps a borrowed pointer; the source outlives the cache).
static int emit_const(struct imp *I, const char *name, int v, int64_t n0, int64_t n1, size_t byte_off) {
    const struct so_tensor *t = cval(I, v);
    if (!t) return I->rc ? I->rc : FAIL(SEMBED_EMISSING, "%s: '%s' is not a constant", I->path, name);
    if (!is_float(t)) return FAIL(SEMBED_EDTYPE, "%s: tensor '%s' ('%s') is %s (expected FLOAT or FLOAT16)", I->path, name, t->name, so_dtype_name(t->dtype));
    uint64_t cnt, tbytes;
    size_t nb;
    if (!ck_numel((const int64_t[]){n0, n1 ? n1 : 1}, 2, SO_MAX_TENSOR_BYTES, &cnt) || !ck_array_bytes(cnt, t->elem_size, &nb) ||
        !ck_mul_u64(t->numel, t->elem_size, &tbytes) || !ck_span_ok(byte_off, nb, tbytes))
        return FAIL(SEMBED_EDIMS, "%s: tensor '%s' ('%s'): [%lld, %lld] at byte %zu does not fit its %llu elements", I->path, name, t->name, (long long)n0,
                    (long long)n1, byte_off, (unsigned long long)t->numel);
    void *owned = NULL;
    struct val *x = &I->v[v];
    if (x->t.owned) { owned = x->t.owned; x->t.owned = NULL; }
    const void *data = (const char *)t->data + byte_off;
    if (owned && byte_off) {  // slices of an owned buffer: copy (packed Attention bias)
        void *c = malloc(nb);
        if (!c) { x->t.owned = owned; return SEMBED_ENOMEM; }
        memcpy(c, data, nb);
        x->t.owned = owned;
        owned = c;
        data = c;
    } else if (owned && cnt != t->numel) {
        x->t.owned = owned;  // a partial view must not steal the whole buffer
        void *c = malloc(nb);
        if (!c) return SEMBED_ENOMEM;
        memcpy(c, data, nb);
        owned = c;
        data = c;
    }
    return emit(I, name, t->dtype == SO_FLOAT ? SEMBED_DTYPE_F32 : SEMBED_DTYPE_F16, n1 ? 2 : 1, n0, n1, data, owned);
}

static int expect_vec(struct imp *I, int v, int64_t n, const char *what) {
    if (v < 0 || !vec_const(I, v, n))
        return I->rc ? I->rc : FAIL(SEMBED_EDIMS, "%s: %s is missing or not a constant float vector of %lld", I->path, what, (long long)n);
    return SEMBED_OK;
}

// Quantized weight [in, out] (int8, or uint8 with zero point) -> Q8_ROW [out, in] with one scale per
// output row. Exact when q - zp fits int8; otherwise the tensor is dequantized to f32 (logged).
static int emit_q8(struct imp *I, const char *name, const struct lin *l, int64_t nout, int64_t nin) {
    const struct so_tensor *w = cval(I, l->w), *s = cval(I, l->wscale), *z = l->wzp >= 0 ? cval(I, l->wzp) : NULL;
    if (!w || !s || (l->wzp >= 0 && !z)) return I->rc ? I->rc : FAIL(SEMBED_EMISSING, "%s: %s: quantized weight, scale or zero point is not a constant", I->path, name);
    if (w->dtype != SO_INT8 && w->dtype != SO_UINT8)
        return FAIL(SEMBED_EDTYPE, "%s: %s: quantized weight '%s' is %s (expected INT8 or UINT8)", I->path, name, w->name, so_dtype_name(w->dtype));
    if (w->dims[0] != nin || w->dims[1] != nout)
        return FAIL(SEMBED_EDIMS, "%s: %s: weight '%s' is [%lld, %lld], expected [%lld, %lld]", I->path, name, w->name, (long long)w->dims[0], (long long)w->dims[1], (long long)nin, (long long)nout);
    if (s->dtype != SO_FLOAT || (s->numel != 1 && s->numel != (uint64_t)nout))
        return FAIL(SEMBED_EDIMS, "%s: %s: weight scale '%s' must be FLOAT with 1 or %lld elements", I->path, name, s->name, (long long)nout);
    if (z && (z->dtype != w->dtype || z->numel != s->numel))
        return FAIL(SEMBED_EDIMS, "%s: %s: zero point '%s' must match the weight type and the scale's size", I->path, name, z->name);
    const float *sc = s->data;
    for (uint64_t i = 0; i < s->numel; i++)
        if (!isfinite(sc[i]) || sc[i] <= 0.0f)
            return FAIL(SEMBED_ECORRUPT, "%s: %s: weight scale %llu is %g (expected finite and > 0)", I->path, name, (unsigned long long)i, (double)sc[i]);
    bool u8 = w->dtype == SO_UINT8;
    const uint8_t *qb = w->data;
    // zero point per output column o of the [in, out] matrix
#define ZP(o) (z ? (u8 ? (int)((const uint8_t *)z->data)[z->numel == 1 ? 0 : (o)] : (int)((const int8_t *)z->data)[z->numel == 1 ? 0 : (o)]) : 0)
#define QV(i, o) (u8 ? (int)qb[(size_t)(i) * (size_t)nout + (size_t)(o)] : (int)(int8_t)qb[(size_t)(i) * (size_t)nout + (size_t)(o)])
    bool fits = true;
    for (int64_t i = 0; i < nin && fits; i++)
        for (int64_t o = 0; o < nout; o++) {
            int d = QV(i, o) - ZP(o);
            if (d < -128 || d > 127) { fits = false; break; }
        }
    uint64_t qn;  // w's dims equal [nin, nout] (checked above), so this is w's numel
    size_t fb;
    if (!ck_numel((const int64_t[]){nout, nin}, 2, SO_MAX_TENSOR_BYTES, &qn) || !ck_array_bytes(qn, sizeof(float), &fb))
        return FAIL(SEMBED_EDIMS, "%s: %s: bad quantized shape [%lld, %lld]", I->path, name, (long long)nout, (long long)nin);
    if (!fits) {
        SEMBED_LOG_WARNF("%s: %s: weights minus zero point do not fit int8; storing them dequantized as f32 ((q - zp) * scale)", I->path, name);
        float *f = malloc(fb);
        if (!f) return SEMBED_ENOMEM;
        for (int64_t o = 0; o < nout; o++)
            for (int64_t i = 0; i < nin; i++) f[o * nin + i] = (float)(QV(i, o) - ZP(o)) * sc[s->numel == 1 ? 0 : o];
        return emit(I, name, SEMBED_DTYPE_F32, 2, nout, nin, f, f);
    }
    int64_t dims[2] = {nout, nin};
    uint64_t nb = sembed_dtype_nbytes(SEMBED_DTYPE_Q8_ROW, 2, dims);
    uint64_t need;
    if (!nb || !ck_add_u64(qn, 4 * (uint64_t)nout, &need) || nb < need) return FAIL(SEMBED_EDIMS, "%s: %s: bad quantized shape", I->path, name);
    unsigned char *buf = calloc(1, nb);
    if (!buf) return SEMBED_ENOMEM;
    int8_t *q = (int8_t *)buf;
    for (int64_t o = 0; o < nout; o++)
        for (int64_t i = 0; i < nin; i++) q[o * nin + i] = (int8_t)(QV(i, o) - ZP(o));
    float *rs = (float *)(buf + (nb - 4 * (uint64_t)nout));
    for (int64_t o = 0; o < nout; o++) rs[o] = sc[s->numel == 1 ? 0 : o];
#undef ZP
#undef QV
    return emit(I, name, SEMBED_DTYPE_Q8_ROW, 2, nout, nin, buf, buf);
}

// Linear weight as [out, in]: borrowed when the graph stores it that way, else transposed
// (exactly: a permutation of the bytes); packed Attention weights are sliced by column.
static int emit_linear(struct imp *I, const char *prefix, const struct lin *l, int64_t nout, int64_t nin) {
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc;
    if (l->wscale >= 0) {
        rc = emit_q8(I, name, l, nout, nin);
    } else {
        const struct so_tensor *w = cval(I, l->w);
        if (!w) return I->rc ? I->rc : SEMBED_EMISSING;
        if (!is_float(w)) return FAIL(SEMBED_EDTYPE, "%s: %s: weight '%s' is %s", I->path, name, w->name, so_dtype_name(w->dtype));
        int64_t r = w->dims[0], c = w->dims[1], n3;
        if (!ck_mul_i64(3, nout, &n3)) return FAIL(SEMBED_EDIMS, "%s: %s: output size %lld overflows", I->path, name, (long long)nout);
        int64_t ein = l->w_in_out ? nin : nout, eout = l->w_in_out ? (l->part >= 0 ? n3 : nout) : nin;
        if (r != ein || c != eout)
            return FAIL(SEMBED_EDIMS, "%s: %s: weight '%s' is [%lld, %lld], expected [%lld, %lld]", I->path, name, w->name, (long long)r, (long long)c, (long long)ein, (long long)eout);
        if (!l->w_in_out) {
            rc = emit_const(I, name, l->w, nout, nin, 0);
        } else {
            // r == nin, c == nout or 3 * nout (checked above): the weight's own numel bounds all of this
            size_t es = w->elem_size, col0 = (size_t)(l->part >= 0 ? l->part * nout : 0), nb;
            uint64_t cnt;
            if (!ck_numel((const int64_t[]){nout, nin}, 2, SO_MAX_TENSOR_BYTES, &cnt) || !ck_array_bytes(cnt, es, &nb))
                return FAIL(SEMBED_EDIMS, "%s: %s: bad shape [%lld, %lld]", I->path, name, (long long)nout, (long long)nin);
            unsigned char *dst = malloc(nb ? nb : 1);
            if (!dst) return SEMBED_ENOMEM;
            const unsigned char *src = w->data;
            for (int64_t o = 0; o < nout; o++)
                for (int64_t i = 0; i < nin; i++)
                    memcpy(dst + ((size_t)o * (size_t)nin + (size_t)i) * es, src + ((size_t)i * (size_t)c + col0 + (size_t)o) * es, es);
            rc = emit(I, name, w->dtype == SO_FLOAT ? SEMBED_DTYPE_F32 : SEMBED_DTYPE_F16, 2, nout, nin, dst, dst);
        }
    }
    if (rc) return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    int64_t bn = nout;
    if (l->part >= 0 && !ck_mul_i64(3, nout, &bn)) return FAIL(SEMBED_EDIMS, "%s: %s: size %lld overflows", I->path, name, (long long)nout);
    if ((rc = expect_vec(I, l->bias, bn, name))) return rc;
    size_t boff = l->part >= 0 ? (size_t)(l->part * nout) * cval(I, l->bias)->elem_size : 0;
    return emit_const(I, name, l->bias, nout, 0, boff);
}

static int emit_ln(struct imp *I, const char *prefix, int gamma, int beta, int64_t hidden) {
    char name[96];
    int rc;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if ((rc = expect_vec(I, gamma, hidden, name)) || (rc = emit_const(I, name, gamma, hidden, 0, 0))) return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if ((rc = expect_vec(I, beta, hidden, name)) || (rc = emit_const(I, name, beta, hidden, 0, 0))) return rc;
    return SEMBED_OK;
}

static int emit_table(struct imp *I, const char *name, int v, int64_t hidden, int64_t *rows) {
    const struct so_tensor *t = mat_const(I, v);
    if (!t) return I->rc ? I->rc : FAIL(SEMBED_EMISSING, "%s: %s is not a constant 2-D table", I->path, name);
    if (t->dims[1] != hidden)
        return FAIL(SEMBED_EDIMS, "%s: %s ('%s') is [%lld, %lld], expected width %lld", I->path, name, t->name, (long long)t->dims[0], (long long)t->dims[1], (long long)hidden);
    *rows = t->dims[0];
    return emit_const(I, name, v, t->dims[0], t->dims[1], 0);
}

// MPNet's relative-position bias (one table [buckets, heads] shared by every layer): a Gather
// from a float constant that is none of the embedding tables, indexed by a computed tensor (the
// buckets), whose rows reach a Softmax through at most 8 shape ops and Adds (the attention
// scores). Returns the table's value, -1 when the graph has none, -2 (rc set) on two of them.
// The bucket computation itself is not checked: it is MPNet's (32 buckets, max distance 128 in
// HF's MPNet), which the config's model_type names.
static bool reaches_softmax(struct imp *I, int v, int depth, int *budget) {
    if (v < 0 || depth > 8 || --*budget < 0) return false; // budget: a hostile graph's fan-out stays cheap
    for (int k = 0; k < I->v[v].n_cons; k++) {
        int c = I->v[v].cons[k];
        if (is_op(I, c, "Softmax")) return true;
        if ((is_op(I, c, "Add") || is_op(I, c, "Transpose") || is_op(I, c, "Unsqueeze") || is_op(I, c, "Reshape") ||
             is_op(I, c, "Cast") || is_op(I, c, "Expand")) && reaches_softmax(I, out0(I, c), depth + 1, budget))
            return true;
    }
    return false;
}

static int find_rel_bias(struct imp *I, const struct emb *e, int heads) {
    int found = -1, budget = 1 << 16; // visits over all candidates
    for (size_t n = 0; n < I->g->n_node; n++) {
        if (!is_op(I, (int)n, "Gather") || so_attr_int(I->g->node[n], "axis", 0) != 0) continue;
        int tv = in(I, (int)n, 0);
        if (tv == e->word || tv == e->pos || tv == e->type) continue;
        const struct so_tensor *t = mat_const(I, tv);
        if (!t || !is_float(t) || t->dims[1] != heads || index_origin(I, in(I, (int)n, 1))) continue;
        if (!reaches_softmax(I, out0(I, (int)n), 0, &budget)) continue;
        if (found >= 0 && found != tv) {
            I->rc = FAIL(SEMBED_EUNSUPPORTED, "%s: two tables look like a relative-position bias ('%s', '%s')", I->path, cval(I, found)->name, t->name);
            return -2;
        }
        found = tv;
    }
    return found;
}

static void eps_check(struct imp *I, float eps, float want, const char *where) {
    if (eps != want) SEMBED_LOG_WARNF("%s: %s has LayerNorm epsilon %g, the embeddings %g; using %g", I->path, where, (double)eps, (double)want, (double)want);
}

static int import(struct imp *I, struct sc_source *src) {
    int rc;
    if ((rc = build_index(I)) || (rc = toposort(I)) || (rc = match_linears(I)) || (rc = match_lns(I))) return rc;
    struct emb e;
    if ((rc = find_embeddings(I, &e))) return rc;
    const struct so_tensor *wt = mat_const(I, e.word);
    if (!wt) return I->rc ? I->rc : FAIL(SEMBED_EMISSING, "%s: word embedding table is not a constant", I->path);
    int64_t H = wt->dims[1], rows;
    if ((rc = emit_table(I, "embeddings.word_embeddings.weight", e.word, H, &rows))) return rc;
    if (!ck_i64_to_u32(rows, &src->vocab_size) || !ck_i64_to_u32(H, &src->hidden_size))
        return FAIL(SEMBED_EDIMS, "%s: word embedding table [%lld, %lld] is too large", I->path, (long long)rows, (long long)H);
    if ((rc = emit_table(I, "embeddings.position_embeddings.weight", e.pos, H, &rows))) return rc;
    if (!ck_i64_to_u32(rows, &src->max_position_embeddings))
        return FAIL(SEMBED_EDIMS, "%s: %lld positions is too many", I->path, (long long)rows);
    src->type_vocab_size = 0;
    if (e.type >= 0) {
        if ((rc = emit_table(I, "embeddings.token_type_embeddings.weight", e.type, H, &rows))) return rc;
        if (!ck_i64_to_u32(rows, &src->type_vocab_size))
            return FAIL(SEMBED_EDIMS, "%s: %lld token types is too many", I->path, (long long)rows);
    }
    if ((rc = emit_ln(I, "embeddings.LayerNorm", e.gamma, e.beta, H))) return rc;
    position_shift(I, e.pos_ids, src->position_shift, sizeof src->position_shift);
    if (I->rc) return I->rc;

    int h = e.vout, nlayers = 0;
    int64_t inter = 0;
    char act[16] = "";
    int heads = 0;
    for (;;) {
        struct layer L;
        if (nlayers >= MAX_LAYERS) return FAIL(SEMBED_ETOOLONG, "%s: more than %d layers", I->path, MAX_LAYERS);
        rc = match_layer(I, h, nlayers, H, &L);
        if (rc < 0) return rc;
        if (rc == 0) break;
        struct lin *li = &I->lins[L.in];
        const struct so_tensor *iw = cval(I, li->w);
        int64_t I_ = li->w_in_out ? iw->dims[1] : iw->dims[0];
        if (nlayers == 0) { inter = I_; heads = L.heads; snprintf(act, sizeof act, "%s", L.act); }
        if (I_ != inter || L.heads != heads || strcmp(act, L.act))
            return FAIL(SEMBED_EARCH, "%s: layer %d differs from layer 0 (intermediate %lld vs %lld, heads %d vs %d, activation %s vs %s)", I->path, nlayers,
                               (long long)I_, (long long)inter, L.heads, heads, L.act, act);
        if (heads <= 0 || H % heads) return FAIL(SEMBED_EARCH, "%s: %d heads do not divide hidden size %lld", I->path, heads, (long long)H);
        char p[96];
        static const char *const qkv[3] = {"query", "key", "value"};
        int ids[3] = {L.q, L.k, L.v};
        for (int k = 0; k < 3; k++) {
            snprintf(p, sizeof p, "encoder.layer.%d.attention.self.%s", nlayers, qkv[k]);
            if ((rc = emit_linear(I, p, &I->lins[ids[k]], H, H))) return rc;
        }
        snprintf(p, sizeof p, "encoder.layer.%d.attention.output.dense", nlayers);
        if ((rc = emit_linear(I, p, &I->lins[L.ao], H, H))) return rc;
        snprintf(p, sizeof p, "encoder.layer.%d.attention.output.LayerNorm", nlayers);
        if ((rc = emit_ln(I, p, I->lns[L.ln1].gamma, I->lns[L.ln1].beta, H))) return rc;
        snprintf(p, sizeof p, "encoder.layer.%d.intermediate.dense", nlayers);
        if ((rc = emit_linear(I, p, li, inter, H))) return rc;
        snprintf(p, sizeof p, "encoder.layer.%d.output.dense", nlayers);
        if ((rc = emit_linear(I, p, &I->lins[L.out], H, inter))) return rc;
        snprintf(p, sizeof p, "encoder.layer.%d.output.LayerNorm", nlayers);
        if ((rc = emit_ln(I, p, I->lns[L.ln2].gamma, I->lns[L.ln2].beta, H))) return rc;
        snprintf(p, sizeof p, "layer %d", nlayers);
        eps_check(I, I->lns[L.ln1].eps, e.eps, p);
        eps_check(I, I->lns[L.ln2].eps, e.eps, p);
        h = I->lns[L.ln2].vout;
        nlayers++;
    }
    if (nlayers == 0) return FAIL(SEMBED_EARCH, "%s: no transformer layer found after the embeddings", I->path);
    int rb = find_rel_bias(I, &e, heads);
    if (rb == -2) return I->rc;
    if (rb >= 0) {
        const struct so_tensor *t = mat_const(I, rb);
        if ((rc = emit_const(I, "encoder.relative_attention_bias.weight", rb, t->dims[0], t->dims[1], 0))) return rc;
    }
    int pl = find_pooler(I, h);
    if (pl >= 0) {
        I->lins[pl].used = true;
        if ((rc = emit_linear(I, "pooler.dense", &I->lins[pl], H, H))) return rc;
    }
    int ignored = 0;
    for (int i = 0; i < I->nl; i++) ignored += !I->lins[i].used;
    if (ignored) SEMBED_LOG_WARNF("%s: ignored %d linear layer(s) outside the encoder (heads other than the pooler)", I->path, ignored);

    src->num_layers = (uint32_t)nlayers;
    src->num_heads = (uint32_t)heads;  // > 0, checked per layer
    if (!ck_i64_to_u32(inter, &src->intermediate_size))
        return FAIL(SEMBED_EDIMS, "%s: intermediate size %lld is too large", I->path, (long long)inter);
    src->layer_norm_eps = e.eps;
    snprintf(src->hidden_act, sizeof src->hidden_act, "%s", act);
    snprintf(src->format, sizeof src->format, "%s", I->quantized ? "onnx-int8" : I->ort_fused ? "onnx-ort" : "onnx");
    return SEMBED_OK;
}

static void imp_free(struct imp *I) {
    for (size_t i = 0; i < I->nv; i++) {
        free(I->v[i].cons);
        if (I->v[i].tstate == 1) so_tensor_release(&I->v[i].t);
    }
    free(I->v);
    free(I->ht);
    for (size_t n = 0; I->nin && n < I->g->n_node; n++) free(I->nin[n]);
    for (size_t n = 0; I->nout && n < I->g->n_node; n++) free(I->nout[n]);
    free(I->nin);
    free(I->nout);
    free(I->topo);
    free(I->lins);
    free(I->lns);
    for (int i = 0; i < I->nout_t; i++) free(I->out[i].owned);
    free(I->out);
}

static int load_model(struct so_onnx *m, const char *label, struct sc_source *src) {
    struct imp I = {0};
    I.path = label;
    I.m = m;
    I.g = m->model->graph;
    int rc = import(&I, src);
    if (!rc) {
        // Tensors borrow from the arena: the source owns it from here on. sc_source_keep releases
        // the arena itself when it fails, and nothing borrowed has been added yet.
        void *arena;
        size_t size;
        so_onnx_take_arena(m, &arena, &size);
        rc = sc_source_keep(src, arena, size);
    }
    for (int i = 0; !rc && i < I.nout_t; i++) {
        struct out_tensor *o = &I.out[i];
        rc = sc_source_add(src, o->name, o->dtype, o->n_dims, o->dims, o->data, o->owned);
        o->owned = NULL;  // sc_source_add owns it now, or freed it on failure
    }
    imp_free(&I);
    so_onnx_free(m);
    return rc;
}

int sc_onnx_load(const char *path, struct sc_source *src) {
    SEMBED_ASSERT(path && src);
    struct so_onnx *m;
    int rc = so_onnx_open(path, &m);
    return rc ? rc : load_model(m, path, src);
}

int sc_onnx_load_memory(const void *buf, size_t len, struct sc_source *src) {
    SEMBED_ASSERT(src);
    struct so_onnx *m;
    int rc = so_onnx_open_memory(buf, len, NULL, "<memory>", &m);
    return rc ? rc : load_model(m, "<memory>", src);
}
