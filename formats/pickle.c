// Restricted unpickler for torch.save state dicts (formats/pickle.h). Opcode encodings and stack
// effects from CPython's Lib/pickletools.py; the torch records from torch/serialization.py
// (persistent_id) and torch/_utils.py (_rebuild_tensor_v2, _rebuild_parameter).
// Nothing is ever called: allowlisted globals become inert markers and REDUCE interprets them.
#define _POSIX_C_SOURCE 200809L
#include "formats/pickle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "sembed/common.h"

#define FN "sembed_convert"
#define MAX_STACK (1u << 20)
#define MAX_MEMO (1u << 20)
#define MAX_VALUES (1u << 24)

enum vk { V_NONE, V_BOOL, V_INT, V_BIGINT, V_FLOAT, V_STR, V_BYTES, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };
static const char *const g_kind[] = {"None", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict", "global", "storage", "tensor"};

enum glob { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_WITH_STATE, G_STORAGE };

struct val {
    enum vk k;
    int64_t i;            /* INT, BOOL; GLOBAL: enum glob; STORAGE: numel */
    double f;
    const char *s;        /* STR / BYTES: borrowed from the pickle (not NUL-terminated) */
    size_t n;             /* STR / BYTES length; TUPLE/LIST/DICT item count (DICT: 2 per pair) */
    size_t cap;
    struct val **items;
    enum sp_storage st;   /* GLOBAL (G_STORAGE) and STORAGE */
    const struct val *key; /* STORAGE: key string */
    struct sp_tensor tensor; /* TENSOR (name unused) */
    const struct val *tstorage;
};

struct up {
    const uint8_t *p, *end, *start;
    const char *label;
    struct val **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nm, mcap;
    struct val **memo;
    size_t memo_cap;
    struct val **all;     /* every allocated value, freed at the end */
    size_t n_all, cap_all;
};

static const struct {
    const char *name;
    size_t size;
} g_storages[SP_STORAGE_COUNT] = {
    [SP_FLOAT] = {"FloatStorage", 4}, [SP_HALF] = {"HalfStorage", 2}, [SP_BFLOAT16] = {"BFloat16Storage", 2},
    [SP_DOUBLE] = {"DoubleStorage", 8}, [SP_LONG] = {"LongStorage", 8}, [SP_INT] = {"IntStorage", 4},
    [SP_SHORT] = {"ShortStorage", 2}, [SP_CHAR] = {"CharStorage", 1}, [SP_BYTE] = {"ByteStorage", 1},
    [SP_BOOL] = {"BoolStorage", 1},
};

size_t sp_storage_elem_size(enum sp_storage s) { return (unsigned)s < SP_STORAGE_COUNT ? g_storages[s].size : 0; }
const char *sp_storage_name(enum sp_storage s) { return (unsigned)s < SP_STORAGE_COUNT ? g_storages[s].name : "?"; }

static size_t off(const struct up *u) { return (size_t)(u->p - u->start); }

#define ERR(code, ...) sembed_fail(code, FN, __VA_ARGS__)

static struct val *new_val(struct up *u, enum vk k) {
    if (u->n_all >= MAX_VALUES) return NULL;
    if (u->n_all == u->cap_all) {
        size_t cap = u->cap_all ? u->cap_all * 2 : 256;
        struct val **a = realloc(u->all, cap * sizeof *a);
        if (!a) return NULL;
        u->all = a;
        u->cap_all = cap;
    }
    struct val *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->k = k;
    u->all[u->n_all++] = v;
    return v;
}

static int push(struct up *u, struct val *v) {
    if (!v) return ERR(SEMBED_ENOMEM, "%s: pickle: out of memory or more than %u values", u->label, MAX_VALUES);
    if (u->sp >= MAX_STACK) return ERR(SEMBED_ETOOLONG, "%s: pickle stack deeper than %u", u->label, MAX_STACK);
    if (u->sp == u->scap) {
        size_t cap = u->scap ? u->scap * 2 : 64;
        struct val **s = realloc(u->stack, cap * sizeof *s);
        if (!s) return SEMBED_ENOMEM;
        u->stack = s;
        u->scap = cap;
    }
    u->stack[u->sp++] = v;
    return SEMBED_OK;
}

static struct val *pop(struct up *u) {
    size_t floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp <= floor) return NULL;
    return u->stack[--u->sp];
}

static int append_item(struct val *c, struct val *x) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        struct val **a = realloc(c->items, cap * sizeof *a);
        if (!a) return SEMBED_ENOMEM;
        c->items = a;
        c->cap = cap;
    }
    c->items[c->n++] = x;
    return SEMBED_OK;
}

// Items above the topmost mark, removed from the stack (with the mark).
static int pop_mark(struct up *u, size_t *first) {
    if (!u->nm) return ERR(SEMBED_EPARSE, "%s: pickle: no MARK before offset %zu", u->label, off(u));
    *first = u->marks[--u->nm];
    return SEMBED_OK;
}

static int need(struct up *u, size_t n) {
    if ((size_t)(u->end - u->p) < n) return ERR(SEMBED_ETRUNCATED, "%s: pickle truncated at offset %zu", u->label, off(u));
    return SEMBED_OK;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static bool str_is(const struct val *v, const char *s) {
    return v && v->k == V_STR && v->n == strlen(s) && !memcmp(v->s, s, v->n);
}

// module.name -> allowlisted marker, or SEMBED_EUNSAFE naming it.
static int resolve_global(struct up *u, const char *mod, size_t ml, const char *name, size_t nl, size_t at) {
    struct val *g = new_val(u, V_GLOBAL);
    if (!g) return push(u, NULL);
#define IS(m, n) (ml == strlen(m) && !memcmp(mod, m, ml) && nl == strlen(n) && !memcmp(name, n, nl))
    if (IS("collections", "OrderedDict")) g->i = G_ORDERED_DICT;
    else if (IS("torch._utils", "_rebuild_tensor_v2")) g->i = G_REBUILD_TENSOR_V2;
    else if (IS("torch._utils", "_rebuild_parameter")) g->i = G_REBUILD_PARAMETER;
    else if (IS("torch._utils", "_rebuild_parameter_with_state")) g->i = G_REBUILD_PARAMETER_WITH_STATE;
    else {
        g->i = -1;
        if (ml == 5 && !memcmp(mod, "torch", 5))
            for (int s = 0; s < SP_STORAGE_COUNT; s++)
                if (nl == strlen(g_storages[s].name) && !memcmp(name, g_storages[s].name, nl)) { g->i = G_STORAGE; g->st = (enum sp_storage)s; }
        if (g->i < 0) {
            // Print at most 80 bytes of each part; they come from an untrusted file.
            int a = ml > 80 ? 80 : (int)ml, b = nl > 80 ? 80 : (int)nl;
            for (int i = 0; i < a; i++) if ((unsigned char)mod[i] < 0x20) a = i;
            for (int i = 0; i < b; i++) if ((unsigned char)name[i] < 0x20) b = i;
            return ERR(SEMBED_EUNSAFE, "%s: pickle references the global %.*s.%.*s at offset %zu, which a state dict never needs; refusing to load it "
                       "(allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage)",
                       u->label, a, mod, b, name, at);
        }
    }
#undef IS
    return push(u, g);
}

static int get_int(const struct val *v, int64_t *out) {
    if (!v || (v->k != V_INT && v->k != V_BOOL)) return -1;
    *out = v->i;
    return 0;
}

static int int_tuple(const struct val *v, int64_t *out, uint32_t *n) {
    if (!v || v->k != V_TUPLE || v->n > SP_MAX_DIMS) return -1;
    for (size_t i = 0; i < v->n; i++)
        if (get_int(v->items[i], &out[i])) return -1;
    *n = (uint32_t)v->n;
    return 0;
}

static int do_reduce(struct up *u, size_t at) {
    struct val *args = pop(u), *fn = pop(u);
    if (!args || !fn) return ERR(SEMBED_EPARSE, "%s: pickle: REDUCE on a short stack at offset %zu", u->label, at);
    if (fn->k != V_GLOBAL || args->k != V_TUPLE)
        return ERR(SEMBED_EUNSAFE, "%s: pickle: REDUCE of a %s at offset %zu: only allowlisted globals may be applied", u->label, g_kind[fn->k], at);
    switch ((enum glob)fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0) return ERR(SEMBED_EPARSE, "%s: pickle: OrderedDict with arguments at offset %zu", u->label, at);
        return push(u, new_val(u, V_DICT));
    case G_REBUILD_TENSOR_V2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (args->n < 6 || args->n > 7 || args->items[0]->k != V_STORAGE)
            return ERR(SEMBED_EPARSE, "%s: pickle: _rebuild_tensor_v2 with unexpected arguments at offset %zu", u->label, at);
        struct val *t = new_val(u, V_TENSOR);
        if (!t) return push(u, NULL);
        int64_t o;
        uint32_t ns, nt;
        if (get_int(args->items[1], &o) || o < 0 || int_tuple(args->items[2], t->tensor.sizes, &ns) ||
            int_tuple(args->items[3], t->tensor.strides, &nt) || ns != nt)
            return ERR(SEMBED_EPARSE, "%s: pickle: _rebuild_tensor_v2 with malformed offset/size/stride at offset %zu", u->label, at);
        t->tensor.offset = (uint64_t)o;
        t->tensor.n_dims = ns;
        t->tstorage = args->items[0];
        return push(u, t);
    }
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_WITH_STATE:
        if (args->n < 3 || args->items[0]->k != V_TENSOR)
            return ERR(SEMBED_EPARSE, "%s: pickle: _rebuild_parameter with unexpected arguments at offset %zu", u->label, at);
        return push(u, args->items[0]);
    case G_STORAGE:
    default:
        return ERR(SEMBED_EUNSAFE, "%s: pickle: calling torch.%s at offset %zu is not something a state dict does", u->label,
                   g_storages[fn->st].name, at);
    }
}

static int do_persid(struct up *u, size_t at) {
    struct val *pid = pop(u);
    // ('storage', torch.<T>Storage, key, location, numel)
    if (!pid || pid->k != V_TUPLE || pid->n != 5 || !str_is(pid->items[0], "storage") || pid->items[1]->k != V_GLOBAL ||
        pid->items[1]->i != G_STORAGE || pid->items[2]->k != V_STR || pid->items[3]->k != V_STR || pid->items[4]->k != V_INT ||
        pid->items[4]->i < 0)
        return ERR(SEMBED_EPARSE, "%s: pickle: persistent id at offset %zu is not a torch storage record", u->label, at);
    const struct val *key = pid->items[2];
    if (key->n == 0 || key->n > 64) return ERR(SEMBED_EPARSE, "%s: pickle: storage key of %zu bytes at offset %zu", u->label, key->n, at);
    for (size_t i = 0; i < key->n; i++) {
        char ch = key->s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
            return ERR(SEMBED_EUNSAFE, "%s: pickle: storage key with character 0x%02x at offset %zu", u->label, (unsigned char)ch, at);
    }
    struct val *s = new_val(u, V_STORAGE);
    if (!s) return push(u, NULL);
    s->st = pid->items[1]->st;
    s->key = key;
    s->i = pid->items[4]->i;
    return push(u, s);
}

static int memo_put(struct up *u, uint64_t idx, size_t at) {
    if (idx >= MAX_MEMO) return ERR(SEMBED_ETOOLONG, "%s: pickle memo index %llu at offset %zu exceeds %u", u->label, (unsigned long long)idx, at, MAX_MEMO);
    if (!u->sp) return ERR(SEMBED_EPARSE, "%s: pickle: PUT on an empty stack at offset %zu", u->label, at);
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        struct val **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return SEMBED_ENOMEM;
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo[idx] = u->stack[u->sp - 1];
    return SEMBED_OK;
}

static int memo_get(struct up *u, uint64_t idx, size_t at) {
    if (idx >= u->memo_cap || !u->memo[idx])
        return ERR(SEMBED_EPARSE, "%s: pickle: GET of unset memo slot %llu at offset %zu", u->label, (unsigned long long)idx, at);
    return push(u, u->memo[idx]);
}

static int run(struct up *u, struct val **result) {
    size_t memo_next = 0;
    int rc;
    while (u->p < u->end) {
        size_t at = off(u);
        uint8_t op = *u->p++;
        struct val *v, *a, *b;
        size_t first = 0, n;
        uint64_t len;
        switch (op) {
        case 0x80: // PROTO
            if ((rc = need(u, 1))) return rc;
            if (u->p[0] < 2 || u->p[0] > 5) return ERR(SEMBED_EUNSUPPORTED, "%s: pickle protocol %u (2..5 supported)", u->label, u->p[0]);
            u->p++;
            break;
        case 0x95: // FRAME: a length hint only
            if ((rc = need(u, 8))) return rc;
            u->p += 8;
            break;
        case '.': // STOP
            v = pop(u);
            if (!v || u->sp || u->nm) return ERR(SEMBED_EPARSE, "%s: pickle: STOP with %zu values and %zu marks on the stack", u->label, u->sp + (v != NULL), u->nm);
            *result = v;
            return SEMBED_OK;
        case '(': // MARK
            if (u->nm >= MAX_STACK) return ERR(SEMBED_ETOOLONG, "%s: pickle: too many marks", u->label);
            if (u->nm == u->mcap) {
                size_t cap = u->mcap ? u->mcap * 2 : 32;
                size_t *m = realloc(u->marks, cap * sizeof *m);
                if (!m) return SEMBED_ENOMEM;
                u->marks = m;
                u->mcap = cap;
            }
            u->marks[u->nm++] = u->sp;
            break;
        case '}': if ((rc = push(u, new_val(u, V_DICT)))) return rc; break;
        case ']': if ((rc = push(u, new_val(u, V_LIST)))) return rc; break;
        case ')': if ((rc = push(u, new_val(u, V_TUPLE)))) return rc; break;
        case 'N': if ((rc = push(u, new_val(u, V_NONE)))) return rc; break;
        case 0x88: case 0x89: // NEWTRUE, NEWFALSE
            if (!(v = new_val(u, V_BOOL))) return push(u, NULL);
            v->i = op == 0x88;
            if ((rc = push(u, v))) return rc;
            break;
        case 't': case 'l': case 'd': // TUPLE, LIST, DICT from the items above the mark
            if ((rc = pop_mark(u, &first))) return rc;
            n = u->sp - first;
            if (op == 'd' && n % 2) return ERR(SEMBED_EPARSE, "%s: pickle: DICT with an odd item count at offset %zu", u->label, at);
            if (!(v = new_val(u, op == 't' ? V_TUPLE : op == 'l' ? V_LIST : V_DICT))) return push(u, NULL);
            for (size_t i = first; i < u->sp; i++)
                if (append_item(v, u->stack[i])) return SEMBED_ENOMEM;
            u->sp = first;
            if ((rc = push(u, v))) return rc;
            break;
        case 0x85: case 0x86: case 0x87: // TUPLE1..3
            n = (size_t)(op - 0x84);
            {
                size_t floor = u->nm ? u->marks[u->nm - 1] : 0;
                if (u->sp - floor < n) return ERR(SEMBED_EPARSE, "%s: pickle: TUPLE%zu on a short stack at offset %zu", u->label, n, at);
                if (!(v = new_val(u, V_TUPLE))) return push(u, NULL);
                for (size_t i = u->sp - n; i < u->sp; i++)
                    if (append_item(v, u->stack[i])) return SEMBED_ENOMEM;
                u->sp -= n;
                if ((rc = push(u, v))) return rc;
            }
            break;
        case 'a': // APPEND
            b = pop(u);
            a = u->sp > (u->nm ? u->marks[u->nm - 1] : 0) ? u->stack[u->sp - 1] : NULL;
            if (!b || !a || a->k != V_LIST) return ERR(SEMBED_EPARSE, "%s: pickle: APPEND to a non-list at offset %zu", u->label, at);
            if (append_item(a, b)) return SEMBED_ENOMEM;
            break;
        case 'e': case 'u': // APPENDS, SETITEMS
            if ((rc = pop_mark(u, &first))) return rc;
            if (first == 0 || (first <= (u->nm ? u->marks[u->nm - 1] : 0) && u->nm))
                return ERR(SEMBED_EPARSE, "%s: pickle: %s without a target at offset %zu", u->label, op == 'e' ? "APPENDS" : "SETITEMS", at);
            a = u->stack[first - 1];
            n = u->sp - first;
            if (op == 'e' ? a->k != V_LIST : (a->k != V_DICT || n % 2))
                return ERR(SEMBED_EPARSE, "%s: pickle: %s on a %s at offset %zu", u->label, op == 'e' ? "APPENDS" : "SETITEMS", g_kind[a->k], at);
            for (size_t i = first; i < u->sp; i++)
                if (append_item(a, u->stack[i])) return SEMBED_ENOMEM;
            u->sp = first;
            break;
        case 's': // SETITEM
            b = pop(u);
            v = pop(u);
            a = u->sp > (u->nm ? u->marks[u->nm - 1] : 0) ? u->stack[u->sp - 1] : NULL;
            if (!b || !v || !a || a->k != V_DICT) return ERR(SEMBED_EPARSE, "%s: pickle: SETITEM on a non-dict at offset %zu", u->label, at);
            if (append_item(a, v) || append_item(a, b)) return SEMBED_ENOMEM;
            break;
        case 'J': case 'K': case 'M': { // BININT (i32), BININT1 (u8), BININT2 (u16)
            int w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((rc = need(u, (size_t)w))) return rc;
            if (!(v = new_val(u, V_INT))) return push(u, NULL);
            uint64_t x = rd_le(u->p, w);
            v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
            u->p += w;
            if ((rc = push(u, v))) return rc;
            break;
        }
        case 0x8a: case 0x8b: // LONG1, LONG4: little-endian two's complement of n bytes
            if ((rc = need(u, op == 0x8a ? 1 : 4))) return rc;
            len = rd_le(u->p, op == 0x8a ? 1 : 4);
            u->p += op == 0x8a ? 1 : 4;
            if ((rc = need(u, len > SIZE_MAX ? SIZE_MAX : (size_t)len))) return rc;
            if (len == 10 && at <= 2 && !memcmp(u->p, "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
                return ERR(SEMBED_EUNSUPPORTED, "%s: legacy (pre-1.6, non-zip) PyTorch format is unsupported: re-save it with torch>=1.6", u->label);
            if (!(v = new_val(u, len <= 8 ? V_INT : V_BIGINT))) return push(u, NULL);
            if (len <= 8 && len > 0) {
                uint64_t x = rd_le(u->p, (int)len);
                if (len < 8 && (x >> (8 * len - 1)) & 1) x |= ~(uint64_t)0 << (8 * len); // sign-extend
                v->i = (int64_t)x;
            }
            u->p += len;
            if ((rc = push(u, v))) return rc;
            break;
        case 'G': { // BINFLOAT, big-endian binary64
            if ((rc = need(u, 8))) return rc;
            uint64_t x = 0;
            for (int i = 0; i < 8; i++) x = (x << 8) | u->p[i];
            if (!(v = new_val(u, V_FLOAT))) return push(u, NULL);
            memcpy(&v->f, &x, 8);
            u->p += 8;
            if ((rc = push(u, v))) return rc;
            break;
        }
        case 'X': case 0x8c: case 0x8d: // BINUNICODE (u32 len), SHORT_BINUNICODE (u8), BINUNICODE8 (u64)
        case 'T': case 'U':             // BINSTRING (i32), SHORT_BINSTRING (u8): py2 str
        case 'B': case 'C': case 0x8e: { // BINBYTES (u32), SHORT_BINBYTES (u8), BINBYTES8 (u64)
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            if ((rc = need(u, (size_t)w))) return rc;
            len = rd_le(u->p, w);
            u->p += w;
            if (op == 'T' && len > INT32_MAX) return ERR(SEMBED_EPARSE, "%s: pickle: negative string length at offset %zu", u->label, at);
            if ((size_t)(u->end - u->p) < len) return ERR(SEMBED_ETRUNCATED, "%s: pickle: string of %llu bytes at offset %zu runs past the end", u->label, (unsigned long long)len, at);
            if (!(v = new_val(u, (op == 'B' || op == 'C' || op == 0x8e) ? V_BYTES : V_STR))) return push(u, NULL);
            v->s = (const char *)u->p;
            v->n = (size_t)len;
            u->p += len;
            if ((rc = push(u, v))) return rc;
            break;
        }
        case 'c': { // GLOBAL "module\nname\n"
            const uint8_t *m = u->p, *e1 = memchr(m, '\n', (size_t)(u->end - m));
            if (!e1) return ERR(SEMBED_ETRUNCATED, "%s: pickle: unterminated GLOBAL at offset %zu", u->label, at);
            const uint8_t *nm = e1 + 1, *e2 = memchr(nm, '\n', (size_t)(u->end - nm));
            if (!e2) return ERR(SEMBED_ETRUNCATED, "%s: pickle: unterminated GLOBAL at offset %zu", u->label, at);
            u->p = e2 + 1;
            if ((rc = resolve_global(u, (const char *)m, (size_t)(e1 - m), (const char *)nm, (size_t)(e2 - nm), at))) return rc;
            break;
        }
        case 0x93: // STACK_GLOBAL
            b = pop(u);
            a = pop(u);
            if (!a || !b || a->k != V_STR || b->k != V_STR) return ERR(SEMBED_EPARSE, "%s: pickle: STACK_GLOBAL without two strings at offset %zu", u->label, at);
            if ((rc = resolve_global(u, a->s, a->n, b->s, b->n, at))) return rc;
            break;
        case 'R': if ((rc = do_reduce(u, at))) return rc; break;
        case 'Q': if ((rc = do_persid(u, at))) return rc; break;
        case 'b': // BUILD: the state of OrderedDict (_metadata) or of a tensor is not needed
            b = pop(u);
            a = u->sp > (u->nm ? u->marks[u->nm - 1] : 0) ? u->stack[u->sp - 1] : NULL;
            if (!a || !b || (a->k != V_DICT && a->k != V_TENSOR))
                return ERR(SEMBED_EUNSAFE, "%s: pickle: BUILD on a %s at offset %zu: only state dicts and tensors are accepted", u->label, a ? g_kind[a->k] : "nothing", at);
            break;
        case 'q': case 'r': // BINPUT (u8), LONG_BINPUT (u32)
            if ((rc = need(u, op == 'q' ? 1 : 4))) return rc;
            len = rd_le(u->p, op == 'q' ? 1 : 4);
            u->p += op == 'q' ? 1 : 4;
            if ((rc = memo_put(u, len, at))) return rc;
            break;
        case 0x94: // MEMOIZE
            if ((rc = memo_put(u, memo_next++, at))) return rc;
            break;
        case 'h': case 'j': // BINGET, LONG_BINGET
            if ((rc = need(u, op == 'h' ? 1 : 4))) return rc;
            len = rd_le(u->p, op == 'h' ? 1 : 4);
            u->p += op == 'h' ? 1 : 4;
            if ((rc = memo_get(u, len, at))) return rc;
            break;
        case '0': // POP
            if (!pop(u)) {
                size_t f2;
                if ((rc = pop_mark(u, &f2))) return rc; // POP of a bare mark
            }
            break;
        case '1': // POP_MARK
            if ((rc = pop_mark(u, &first))) return rc;
            u->sp = first;
            break;
        case '2': // DUP
            if (!u->sp) return ERR(SEMBED_EPARSE, "%s: pickle: DUP on an empty stack", u->label);
            if ((rc = push(u, u->stack[u->sp - 1]))) return rc;
            break;
        case 'i': case 'o': case 0x81: case 0x92: case 0x82: case 0x83: case 0x84:
            return ERR(SEMBED_EUNSAFE, "%s: pickle opcode 0x%02x (%s) at offset %zu builds arbitrary objects; a state dict never uses it", u->label, op,
                       op == 'i' ? "INST" : op == 'o' ? "OBJ" : op == 0x81 ? "NEWOBJ" : op == 0x92 ? "NEWOBJ_EX" : "EXT", at);
        default:
            return ERR(SEMBED_EUNSUPPORTED, "%s: pickle opcode 0x%02x at offset %zu is not part of what torch.save writes", u->label, op, at);
        }
    }
    return ERR(SEMBED_ETRUNCATED, "%s: pickle ends without STOP", u->label);
}

void sp_free(struct sp_state_dict *sd) {
    if (!sd) return;
    for (size_t i = 0; i < sd->n; i++) { free(sd->t[i].name); free(sd->t[i].key); }
    free(sd->t);
    memset(sd, 0, sizeof *sd);
}

int sp_load_state_dict(const void *pkl, size_t len, const char *label, struct sp_state_dict *out) {
    struct up u = {.p = pkl, .end = (const uint8_t *)pkl + len, .start = pkl, .label = label};
    struct sp_state_dict sd = {0};
    struct val *root = NULL;
    memset(out, 0, sizeof *out);
    int rc = run(&u, &root);
    if (rc == 0 && root->k != V_DICT)
        rc = ERR(SEMBED_EPARSE, "%s: pickle holds a %s, not a state dict", label, g_kind[root->k]);
    if (rc == 0) {
        size_t n = root->n / 2;
        sd.t = calloc(n ? n : 1, sizeof *sd.t);
        if (!sd.t) rc = SEMBED_ENOMEM;
        for (size_t i = 0; i < n && rc == 0; i++) {
            const struct val *k = root->items[2 * i], *v = root->items[2 * i + 1];
            if (k->k != V_STR || !k->n || memchr(k->s, 0, k->n)) { rc = ERR(SEMBED_EPARSE, "%s: state dict key %zu is not a name", label, i); break; }
            if (v->k != V_TENSOR) {
                rc = ERR(SEMBED_EUNSUPPORTED, "%s: state dict entry '%.*s' is a %s, not a tensor", label, k->n > 200 ? 200 : (int)k->n, k->s, g_kind[v->k]);
                break;
            }
            struct sp_tensor *t = &sd.t[sd.n];
            *t = v->tensor;
            t->name = strndup(k->s, k->n);
            t->key = strndup(v->tstorage->key->s, v->tstorage->key->n);
            if (!t->name || !t->key) { free(t->name); free(t->key); rc = SEMBED_ENOMEM; break; }
            t->stype = v->tstorage->st;
            t->storage_numel = (uint64_t)v->tstorage->i;
            sd.n++;
        }
    }
    for (size_t i = 0; i < u.n_all; i++) { free(u.all[i]->items); free(u.all[i]); }
    free(u.all);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    if (rc) { sp_free(&sd); return rc; }
    *out = sd;
    return SEMBED_OK;
}
