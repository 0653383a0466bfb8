// sembed_convert: find the checkpoint, load it into a canonical state dict, check it against the
// architecture, and stream it into a .semb file tensor by tensor (docs/convert.md).
#define _GNU_SOURCE
#include "sembed/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "convert/calibrate.h"
#include "convert/internal.h"
#include "convert/onnx_import.h"
#include "formats/checked.h"
#include "formats/jsonx.h"
#include "formats/log.h"
#include "formats/pickle.h"
#include "formats/safetensors.h"
#include "formats/zip.h"
#include "runtime/kernels/kernels.h"
#include "sembed/semb.h"

#define PKL_MAX (256u << 20) /* data.pkl of a state dict is a few hundred KB; refuse absurd claims */

SEMBED_API struct sembed_convert_params sembed_convert_default_params(void) {
    struct sembed_convert_params p;
    memset(&p, 0, sizeof p);
    p.dtype = SEMBED_DTYPE_F32;
    p.normalize = -1;
    p.created = -1;
    return p;
}

// ------------------------------------------------------------------------------- files

int sc_map_file(struct sc_ctx *c, const char *path, const void **data, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sembed_fail(errno == ENOENT ? SEMBED_ENOTFOUND : SEMBED_EIO, SC_FN, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sembed_fail(SEMBED_EIO, SC_FN, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        static const char empty[1];
        *data = empty;
        *len = 0;
        return SEMBED_OK;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) { close(fd); return sembed_fail(SEMBED_ETOOLONG, SC_FN, "%s: too large", path); }
    if (c->n_maps == c->cap_maps) {
        size_t cap = c->cap_maps ? c->cap_maps * 2 : 8;
        struct sc_map *m = realloc(c->maps, cap * sizeof *m);
        if (!m) { close(fd); return SEMBED_ENOMEM; }
        c->maps = m;
        c->cap_maps = cap;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return sembed_fail(SEMBED_EIO, SC_FN, "%s: mmap failed: %s", path, strerror(errno));
    c->maps[c->n_maps].p = p;
    c->maps[c->n_maps].n = (size_t)st.st_size;
    c->n_maps++;
    *data = p;
    *len = (size_t)st.st_size;
    return SEMBED_OK;
}

// Drop the pages of [p, p+n) from the resident set if they belong to one of our read-only file
// mappings (they are re-read from the page cache if touched again). Keeps peak RSS small.
static void release_pages(const struct sc_ctx *c, const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, b = a + n;
    for (size_t i = 0; i < c->n_maps; i++) {
        uintptr_t lo = (uintptr_t)c->maps[i].p, hi = lo + c->maps[i].n;
        if (a < lo || b > hi) continue;
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t s = a & ~(pg - 1), e = (b + pg - 1) & ~(pg - 1);
        if (e > ((hi + pg - 1) & ~(pg - 1))) e = (hi + pg - 1) & ~(pg - 1);
        madvise((void *)s, e - s, MADV_DONTNEED);
        return;
    }
}

int sc_note_file(struct sc_ctx *c, const char *path) {
    const char *rel = path;
    size_t rl = strlen(c->root);
    if (!strncmp(path, c->root, rl) && path[rl] == '/') rel = path + rl + 1;
    else if (!strncmp(path, c->root, rl) && rl && c->root[rl - 1] == '/') rel = path + rl;
    for (size_t i = 0; i < c->n_files; i++)
        if (!strcmp(c->files[i], rel)) return SEMBED_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sembed_fail(SEMBED_EIO, SC_FN, "%s: cannot open: %s", path, strerror(errno));
    XXH3_state_t *st = XXH3_createState();
    enum { BUF = 1 << 16 }; // 64 KiB: reads stay large; a 1 MiB buffer is an mmap per call under ASan (fuzz_hf_dir)
    char *buf = malloc(BUF);
    int rc = SEMBED_OK;
    if (!st || !buf) rc = SEMBED_ENOMEM;
    else XXH3_128bits_reset(st);
    while (rc == 0) {
        ssize_t k = read(fd, buf, BUF);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { rc = sembed_fail(SEMBED_EIO, SC_FN, "%s: read failed: %s", path, strerror(errno)); break; }
        if (k == 0) break;
        XXH3_128bits_update(st, buf, (size_t)k);
    }
    close(fd);
    free(buf);
    if (rc) { XXH3_freeState(st); return rc; }
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(st));
    XXH3_freeState(st);
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", canon.digest[i]);
    if (c->n_files == c->cap_files) {
        size_t cap = c->cap_files ? c->cap_files * 2 : 16;
        char **f = realloc(c->files, cap * sizeof *f), **h;
        if (!f) return SEMBED_ENOMEM;
        c->files = f;
        h = realloc(c->hashes, cap * sizeof *h);
        if (!h) return SEMBED_ENOMEM;
        c->hashes = h;
        c->cap_files = cap;
    }
    c->files[c->n_files] = strdup(rel);
    c->hashes[c->n_files] = strdup(hex);
    if (!c->files[c->n_files] || !c->hashes[c->n_files]) {
        free(c->files[c->n_files]);
        free(c->hashes[c->n_files]);
        return SEMBED_ENOMEM;
    }
    c->n_files++;
    return SEMBED_OK;
}

// ------------------------------------------------------------------------------- weight containers

static bool ignorable_int_tensor(const char *name) {
    size_t n = strlen(name);
    return (n >= 12 && !strcmp(name + n - 12, "position_ids")) || (n >= 14 && !strcmp(name + n - 14, "token_type_ids"));
}

static int load_safetensors(struct sc_ctx *c, const char *path, const void *buf, size_t len, struct sc_source *dst) {
    struct sf_file f;
    int rc = sf_parse(buf, len, path, &f);
    if (rc) return rc;
    for (size_t i = 0; i < f.n && rc == 0; i++) {
        const struct sf_tensor *t = &f.t[i];
        enum sembed_dtype dt;
        if (t->dtype == SF_F32) dt = SEMBED_DTYPE_F32;
        else if (t->dtype == SF_F16) dt = SEMBED_DTYPE_F16;
        else if (t->dtype == SF_BF16) dt = SEMBED_DTYPE_BF16;
        else if (ignorable_int_tensor(t->name)) continue;
        else { rc = sembed_fail(SEMBED_EDTYPE, SC_FN, "%s: tensor '%s' has dtype %s (F32, F16, BF16 supported)", path, t->name, sf_dtype_name(t->dtype)); break; }
        if (t->n_dims < 1 || t->n_dims > SEMBED_MAX_DIMS) {
            rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s: tensor '%s' has %u dims (1..%d supported)", path, t->name, t->n_dims, SEMBED_MAX_DIMS);
            break;
        }
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (t->dims[d] == 0) rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s: tensor '%s' is empty", path, t->name);
        if (rc == 0) rc = sc_source_add(dst, t->name, dt, t->n_dims, t->dims, t->data, NULL);
    }
    sf_free(&f);
    (void)c;
    return rc;
}

// Copy a strided view into a contiguous heap buffer (PyTorch allows non-contiguous saved views).
static int gather_strided(const uint8_t *base, size_t es, const struct sp_tensor *t, uint64_t numel, void **out) {
    size_t nb;  // numel and every offset below were bounded by the storage size (load_torch_zip)
    if (!ck_array_bytes(numel, es, &nb)) return SEMBED_ENOMEM;
    uint8_t *dst = malloc(nb ? nb : 1);
    if (!dst) return SEMBED_ENOMEM;
    int64_t idx[SP_MAX_DIMS] = {0};
    for (uint64_t k = 0; k < numel; k++) {
        int64_t off = (int64_t)t->offset;
        for (uint32_t d = 0; d < t->n_dims; d++) off += idx[d] * t->strides[d];
        memcpy(dst + k * es, base + (uint64_t)off * es, es);
        for (int d = (int)t->n_dims - 1; d >= 0; d--) {
            if (++idx[d] < t->sizes[d]) break;
            idx[d] = 0;
        }
    }
    *out = dst;
    return SEMBED_OK;
}

static int load_torch_zip(struct sc_ctx *c, const char *path, const void *buf, size_t len, struct sc_source *dst) {
    struct sz_archive z;
    struct sp_state_dict sd = {0};
    void *pkl_owned = NULL;
    int rc = sz_open(buf, len, path, &z);
    if (rc) return rc;
    // The pickle is <archive>/data.pkl; its storages are <archive>/data/<key>.
    long pi = -1;
    for (size_t i = 0; i < z.n; i++) {
        const char *s = strrchr(z.e[i].name, '/');
        if (s && !strcmp(s, "/data.pkl") && s == strchr(z.e[i].name, '/')) { // exactly <archive>/data.pkl
            if (pi >= 0) { rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: more than one data.pkl", path); goto done; }
            pi = (long)i;
        }
    }
    if (pi < 0) { rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: zip archive without <name>/data.pkl: not a torch.save file", path); goto done; }
    size_t prefix_len = (size_t)(strchr(z.e[pi].name, '/') - z.e[pi].name);
    const void *pkl;
    size_t pkl_len;
    if ((rc = sz_extract(&z, (size_t)pi, PKL_MAX, &pkl, &pkl_len, &pkl_owned))) goto done;
    if ((rc = sp_load_state_dict(pkl, pkl_len, path, &sd))) goto done;
    char member[512];
    for (size_t i = 0; i < sd.n; i++) {
        const struct sp_tensor *t = &sd.t[i];
        enum sembed_dtype dt;
        if (t->stype == SP_FLOAT) dt = SEMBED_DTYPE_F32;
        else if (t->stype == SP_HALF) dt = SEMBED_DTYPE_F16;
        else if (t->stype == SP_BFLOAT16) dt = SEMBED_DTYPE_BF16;
        else if (ignorable_int_tensor(t->name)) continue;
        else { rc = sembed_fail(SEMBED_EDTYPE, SC_FN, "%s: tensor '%s' is a %s (Float, Half, BFloat16 supported)", path, t->name, sp_storage_name(t->stype)); goto done; }
        if (t->n_dims < 1 || t->n_dims > SEMBED_MAX_DIMS) {
            rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s: tensor '%s' has %u dims (1..%d supported)", path, t->name, t->n_dims, SEMBED_MAX_DIMS);
            goto done;
        }
        if (snprintf(member, sizeof member, "%.*s/data/%s", (int)prefix_len, z.e[pi].name, t->key) >= (int)sizeof member) {
            rc = sembed_fail(SEMBED_ETOOLONG, SC_FN, "%s: storage key too long", path);
            goto done;
        }
        long mi = sz_find(&z, member);
        if (mi < 0) { rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: tensor '%s': storage member %s missing", path, t->name, member); goto done; }
        const void *sdata;
        size_t ssize;
        void *sowned = NULL;
        size_t es = sp_storage_elem_size(t->stype);
        if (z.e[mi].method == 0) {
            if ((rc = sz_stored(&z, (size_t)mi, &sdata, &ssize))) goto done;
            if ((rc = sz_check_crc(&z, (size_t)mi, sdata, ssize))) goto done;
            release_pages(c, sdata, ssize);
        } else {
            uint64_t want;
            if (!ck_mul_u64(t->storage_numel, es, &want) || want > SIZE_MAX) want = SIZE_MAX;  // then the extract refuses the member
            if ((rc = sz_extract(&z, (size_t)mi, (size_t)want, &sdata, &ssize, &sowned))) goto done;
        }
        if (t->storage_numel > ssize / es) {
            free(sowned);
            rc = sembed_fail(SEMBED_EBOUNDS, SC_FN, "%s: tensor '%s': storage claims %llu elements but %s holds %zu bytes", path, t->name,
                             (unsigned long long)t->storage_numel, member, ssize);
            goto done;
        }
        // Bounds of the view: offset + sum (size_d - 1) * stride_d < numel, strides >= 0. Sizes and
        // strides are the pickle's choice: every product and sum is checked (issue 20 audit: four
        // sizes of 2^16 once wrapped numel to 0 and passed the bound below).
        uint64_t numel = 1, last = t->offset;
        bool contiguous = true, ok = true;
        uint64_t expect_stride = 1;
        for (int d = (int)t->n_dims - 1; d >= 0 && ok; d--) {
            if (t->sizes[d] <= 0 || t->strides[d] < 0 || t->sizes[d] > (int64_t)t->storage_numel ||
                (uint64_t)t->strides[d] > t->storage_numel) {
                free(sowned);
                rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s: tensor '%s': invalid size/stride in dim %d", path, t->name, d);
                goto done;
            }
            uint64_t span;
            ok = ck_mul_u64(numel, (uint64_t)t->sizes[d], &numel) &&
                 ck_mul_u64((uint64_t)(t->sizes[d] - 1), (uint64_t)t->strides[d], &span) && ck_add_u64(last, span, &last);
            if (t->sizes[d] != 1 && (uint64_t)t->strides[d] != expect_stride) contiguous = false;
            if (!ck_mul_u64(expect_stride, (uint64_t)t->sizes[d], &expect_stride)) contiguous = false;
        }
        if (!ok || numel > t->storage_numel || last >= t->storage_numel) {
            free(sowned);
            rc = sembed_fail(SEMBED_EBOUNDS, SC_FN, "%s: tensor '%s': view [offset %llu, last element %llu] outside its storage of %llu elements",
                             path, t->name, (unsigned long long)t->offset, (unsigned long long)last, (unsigned long long)t->storage_numel);
            goto done;
        }
        void *owned = NULL;
        const uint8_t *base = (const uint8_t *)sdata;
        const void *data = base + t->offset * es;
        if (!contiguous) {
            if ((rc = gather_strided(base, es, t, numel, &owned))) { free(sowned); goto done; }
            data = owned;
            free(sowned);
            sowned = NULL;
        } else if (sowned) {
            // Deflated storage: the tensor owns the inflated buffer (copy if several share it).
            owned = malloc(numel * es);  // numel <= storage_numel <= ssize / es: no overflow
            if (!owned) { free(sowned); rc = SEMBED_ENOMEM; goto done; }
            memcpy(owned, data, numel * es);
            data = owned;
            free(sowned);
            sowned = NULL;
        }
        if ((rc = sc_source_add(dst, t->name, dt, t->n_dims, t->sizes, data, owned))) goto done;
    }
done:
    sp_free(&sd);
    free(pkl_owned);
    sz_close(&z);
    return rc;
}

int sc_torch_load_memory(const void *buf, size_t len, struct sc_source *dst) {
    struct sc_ctx c;  // no mappings: nothing to release pages of
    memset(&c, 0, sizeof c);
    return load_torch_zip(&c, "<memory>", buf, len, dst);
}

int sc_load_weights(struct sc_ctx *c, const char *path, struct sc_source *dst) {
    const void *buf = NULL;
    size_t len = 0;
    int rc = sc_map_file(c, path, &buf, &len);
    if (rc) return rc;
    if ((rc = sc_note_file(c, path))) return rc;
    const uint8_t *p = buf;
    if (len >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4) {
        if (!dst->format[0]) snprintf(dst->format, sizeof dst->format, "pytorch");
        return load_torch_zip(c, path, buf, len, dst);
    }
    if (len >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
        return sembed_fail(SEMBED_EUNSUPPORTED, SC_FN,
                           "%s: legacy (pre-1.6, non-zip) PyTorch format is unsupported: re-save it with torch>=1.6 "
                           "(torch.save(torch.load(f), f)) or convert it to safetensors", path);
    if (len >= 9 && p[8] == '{') {
        if (!dst->format[0]) snprintf(dst->format, sizeof dst->format, "safetensors");
        return load_safetensors(c, path, buf, len, dst);
    }
    if (len >= 262 && !memcmp(p + 257, "ustar", 5))
        return sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s: legacy tar PyTorch format is unsupported: re-save it with torch>=1.6", path);
    return sembed_fail(SEMBED_EMAGIC, SC_FN, "%s: neither safetensors nor a PyTorch zip checkpoint", path);
}

// model.safetensors.index.json / pytorch_model.bin.index.json: {"weight_map": {tensor: shard file}}.
static int load_sharded(struct sc_ctx *c, const char *index_path, const char *dir, struct sc_source *dst) {
    struct json_object *o;
    int rc = sj_load_file(index_path, SJ_MAX_CONFIG, &o);
    if (rc) return rc;
    if ((rc = sc_note_file(c, index_path))) { json_object_put(o); return rc; }
    struct json_object *wm = sj_get(o, "weight_map");
    if (!wm || !json_object_is_type(wm, json_type_object)) {
        json_object_put(o);
        return sembed_fail(SEMBED_EPARSE, SC_FN, "%s: no \"weight_map\" object", index_path);
    }
    // Each distinct shard once, in first-mention order; shard names are plain file names.
    size_t n_shards = 0;
    const char **shards = calloc((size_t)json_object_object_length(wm) + 1, sizeof *shards);
    if (!shards) { json_object_put(o); return SEMBED_ENOMEM; }
    json_object_object_foreach(wm, tname, fval) {
        if (!json_object_is_type(fval, json_type_string)) {
            rc = sembed_fail(SEMBED_EPARSE, SC_FN, "%s: weight_map[\"%s\"] is not a file name", index_path, tname);
            break;
        }
        const char *fn = json_object_get_string(fval);
        if (!*fn || strchr(fn, '/') || !strcmp(fn, "..") || !strcmp(fn, ".")) {
            rc = sembed_fail(SEMBED_EUNSAFE, SC_FN, "%s: shard name \"%s\" is not a plain file name in the model folder", index_path, fn);
            break;
        }
        size_t k = 0;
        while (k < n_shards && strcmp(shards[k], fn)) k++;
        if (k == n_shards) shards[n_shards++] = fn;
    }
    for (size_t k = 0; k < n_shards && rc == 0; k++) {
        char *sp = sc_path(dir, shards[k]);
        if (!sp) { rc = SEMBED_ENOMEM; break; }
        struct sc_source part = {0};
        rc = sc_load_weights(c, sp, &part);
        for (size_t i = 0; i < part.n && rc == 0; i++) {
            struct json_object *f = sj_get(wm, part.t[i].name);
            if (!f || strcmp(json_object_get_string(f), shards[k])) {
                rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: tensor '%s' is in shard %s but the index says %s", index_path, part.t[i].name,
                                 shards[k], f ? json_object_get_string(f) : "nothing");
                break;
            }
            rc = sc_source_add(dst, part.t[i].name, part.t[i].dtype, part.t[i].n_dims, part.t[i].dims, part.t[i].data, part.t[i].owned);
            part.t[i].owned = NULL;
        }
        if (!dst->format[0]) snprintf(dst->format, sizeof dst->format, "%s", part.format);
        sc_source_free(&part);
        free(sp);
    }
    if (rc == 0) {
        json_object_object_foreach(wm, tname2, fval2) {
            (void)fval2;
            if (!sc_source_find(dst, tname2) && !ignorable_int_tensor(tname2)) {
                rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: tensor '%s' listed in the index is not in its shard", index_path, tname2);
                break;
            }
        }
    }
    free(shards);
    json_object_put(o);
    return rc;
}

// ------------------------------------------------------------------------------- source resolution

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

// Load the weights found in model_dir (or the file itself) into c->src.
static int load_model_weights(struct sc_ctx *c, const char *file, const char *model_dir, bool *onnx) {
    *onnx = false;
    if (file) {
        if (has_suffix(file, ".onnx")) {
            *onnx = true;
            return sc_onnx_load(file, &c->src);
        }
        if (has_suffix(file, ".index.json")) return load_sharded(c, file, model_dir, &c->src);
        return sc_load_weights(c, file, &c->src);
    }
    static const char *const candidates[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                             "pytorch_model.bin.index.json", "model.onnx", "onnx/model.onnx"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char *p = sc_path(model_dir, candidates[i]);
        if (!p) return SEMBED_ENOMEM;
        if (sc_is_file(p)) {
            int rc = load_model_weights(c, p, model_dir, onnx);
            if (rc == 0 && *onnx) rc = sc_note_file(c, p);
            free(p);
            return rc;
        }
        free(p);
    }
    return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: no weights found (model.safetensors, model.safetensors.index.json, pytorch_model.bin, model.onnx)", model_dir);
}

// ONNX importers recover sizes from the graph; config.json (when present) must agree.
static int merge_graph_hparams(struct sc_ctx *c) {
    struct sc_hparams *h = &c->hp;
    const struct sc_source *s = &c->src;
    struct { const char *name; uint32_t *cfg; uint32_t graph; } f[] = {
        {"num_layers", &h->num_layers, s->num_layers}, {"hidden_size", &h->hidden_size, s->hidden_size},
        {"num_heads", &h->num_heads, s->num_heads}, {"intermediate_size", &h->intermediate_size, s->intermediate_size},
        {"vocab_size", &h->vocab_size, s->vocab_size}, {"max_position_embeddings", &h->max_position_embeddings, s->max_position_embeddings},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (h->from_config) {
            if (f[i].graph && f[i].graph != *f[i].cfg)
                return sembed_fail(SEMBED_EINVAL, SC_FN, "%s: config.json says %u but the ONNX graph has %u", f[i].name, *f[i].cfg, f[i].graph);
        } else {
            if (!f[i].graph) return sembed_fail(SEMBED_EMISSING, SC_FN, "no config.json and the ONNX graph does not reveal %s", f[i].name);
            *f[i].cfg = f[i].graph;
        }
    }
    // RoBERTa / XLM-R / MPNet count positions from past the padding index; read as BERT (from 0)
    // every position would be off by that much and the embeddings silently wrong.
    if (s->position_shift[0] && !h->from_config)
        return sembed_fail(SEMBED_EARCH, SC_FN, "no config.json, and the ONNX graph offsets its position ids (%s) as RoBERTa, XLM-RoBERTa and MPNet do: "
                           "sembed cannot tell the architecture and padding index from the graph; put the checkpoint's config.json next to the .onnx file",
                           s->position_shift);
    if (s->position_shift[0] && !h->roberta && !h->mpnet)
        return sembed_fail(SEMBED_EARCH, SC_FN, "config.json says %s, but the ONNX graph offsets its position ids (%s) as RoBERTa, XLM-RoBERTa and MPNet do",
                           h->source_arch, s->position_shift);
    if (!h->from_config) {
        snprintf(h->source_arch, sizeof h->source_arch, "BertModel");
        h->type_vocab_size = s->type_vocab_size;
        h->layer_norm_eps = s->layer_norm_eps > 0 ? s->layer_norm_eps : 1e-12f;
        snprintf(h->hidden_act, sizeof h->hidden_act, "%s", s->hidden_act[0] ? s->hidden_act : "gelu");
        h->hidden_dropout = h->attention_dropout = 0.1f;
        if (!s->hidden_act[0]) SEMBED_LOG_WARNF("no config.json: assuming hidden_act gelu");
    } else if (s->hidden_act[0] && strcmp(s->hidden_act, h->hidden_act)) {
        return sembed_fail(SEMBED_EINVAL, SC_FN, "hidden_act: config.json says %s but the ONNX graph computes %s", h->hidden_act, s->hidden_act);
    }
    return SEMBED_OK;
}

// ------------------------------------------------------------------------------- writing

static enum sembed_dtype out_dtype(const struct sc_tensor *t, enum sembed_dtype target) {
    if (t->dtype == SEMBED_DTYPE_Q8_ROW || t->dtype == SEMBED_DTYPE_I8) return t->dtype; // imported int8 stays int8
    if (t->n_dims == 1) return SEMBED_DTYPE_F32; // biases, LayerNorms
    if (!strncmp(t->name, "encoder.relative_attention_bias", 31)) return SEMBED_DTYPE_F32; // MPNet's bias table: small, f32
    if (target != SEMBED_DTYPE_Q8_ROW) return target;
    if (!strcmp(t->name, "embeddings.word_embeddings.weight")) return SEMBED_DTYPE_F16;
    if (!strncmp(t->name, "embeddings.", 11)) return SEMBED_DTYPE_F32;
    if (!strncmp(t->name, "classifier.", 11)) return SEMBED_DTYPE_F32; // the head runs f32 and is small
    if (!strncmp(t->name, "encoder.relative_attention_bias", 31)) return SEMBED_DTYPE_F32; // MPNet's bias table
    return SEMBED_DTYPE_Q8_ROW; // Linear weights [out, in]
}

static uint64_t numel_of(const struct sc_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->dims[d];
    return n;
}

static float load_elem(const uint8_t *p, enum sembed_dtype dt, uint64_t i) {
    if (dt == SEMBED_DTYPE_F32) { float f; memcpy(&f, p + 4 * i, 4); return f; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return dt == SEMBED_DTYPE_F16 ? sk_f16_to_f32(h) : sk_bf16_to_f32(h);
}

struct wstate {
    const struct sc_ctx *c;
    struct sembed_writer *w;
    const struct sembed_convert_params *p;
    uint64_t done, total;
    uint8_t *buf;
    size_t cap;
    float *row;
};

static int put(struct wstate *s, const void *data, size_t n) {
    int rc = sembed_writer_write(s->w, data, n);
    if (rc) return rc;
    s->done += n;
    if (s->p->progress) s->p->progress(s->done, s->total, s->p->progress_user_data);
    return SEMBED_OK;
}

static int write_tensor(struct wstate *s, const struct sc_tensor *t, enum sembed_dtype od) {
    const uint8_t *src = t->data;
    uint64_t n = numel_of(t);
    int rc;
    if (od == t->dtype) { // bytes as they are, in 16 MiB pieces
        uint64_t nb = sembed_dtype_nbytes(t->dtype, t->n_dims, t->dims);
        for (uint64_t off = 0; off < nb; off += 16u << 20) {
            size_t k = nb - off < (16u << 20) ? (size_t)(nb - off) : (16u << 20);
            if ((rc = put(s, src + off, k))) return rc;
            release_pages(s->c, src + off, k); // a 90 MB word table must not stay resident
        }
        return SEMBED_OK;
    }
    if (od == SEMBED_DTYPE_F32 || od == SEMBED_DTYPE_F16 || od == SEMBED_DTYPE_BF16) {
        size_t es = od == SEMBED_DTYPE_F32 ? 4 : 2, per = s->cap / es;
        for (uint64_t i = 0; i < n;) {
            size_t k = n - i < per ? (size_t)(n - i) : per;
            for (size_t j = 0; j < k; j++) {
                float f = load_elem(src, t->dtype, i + j);
                if (od == SEMBED_DTYPE_F32) memcpy(s->buf + 4 * j, &f, 4);
                else {
                    uint16_t h = od == SEMBED_DTYPE_F16 ? sk_f32_to_f16(f) : sk_f32_to_bf16(f);
                    if (od == SEMBED_DTYPE_F16 && isfinite(f) && (h & 0x7c00u) == 0x7c00u)
                        return sembed_fail(SEMBED_EINVAL, SC_FN, "tensor '%s': value %g at element %llu does not fit in f16 (use --dtype bf16 or f32)",
                                           t->name, (double)f, (unsigned long long)(i + j));
                    memcpy(s->buf + 2 * j, &h, 2);
                }
            }
            if ((rc = put(s, s->buf, k * es))) return rc;
            release_pages(s->c, src + i * (t->dtype == SEMBED_DTYPE_F32 ? 4 : 2), k * (t->dtype == SEMBED_DTYPE_F32 ? 4 : 2));
            i += k;
        }
        return SEMBED_OK;
    }
    SEMBED_ASSERT(od == SEMBED_DTYPE_Q8_ROW);
    uint64_t cols = (uint64_t)t->dims[t->n_dims - 1], rows = n / cols;
    float *scales = malloc(rows * sizeof *scales);
    if (!scales) return SEMBED_ENOMEM;
    rc = SEMBED_OK;
    size_t filled = 0;
    for (uint64_t r = 0; r < rows && rc == 0; r++) {
        for (uint64_t j = 0; j < cols; j++) s->row[j] = load_elem(src, t->dtype, r * cols + j);
        if (sc_q8_row_scale(s->row, cols, &scales[r])) {
            rc = sembed_fail(SEMBED_EINVAL, SC_FN, "tensor '%s': row %llu holds a NaN or infinity; cannot quantize", t->name, (unsigned long long)r);
            break;
        }
        if (filled + cols > s->cap) {
            rc = put(s, s->buf, filled);
            filled = 0;
            size_t es = t->dtype == SEMBED_DTYPE_F32 ? 4 : 2;
            release_pages(s->c, src, (size_t)((r + 1) * cols * es)); // rows read so far (scale pass)
        }
        sc_q8_row_quantize(s->row, cols, scales[r], (int8_t *)s->buf + filled);
        filled += cols;
    }
    uint64_t qbytes = rows * cols, pad = (64 - qbytes % 64) % 64;
    if (rc == 0 && filled) rc = put(s, s->buf, filled);
    if (rc == 0 && pad) {
        static const uint8_t zeros[64];
        rc = put(s, zeros, (size_t)pad);
    }
    if (rc == 0) rc = put(s, scales, rows * sizeof *scales);
    free(scales);
    return rc;
}

// Canonical tensor order: embeddings, layers, pooler, pooling Dense, MLM head.
static int canonical_order(struct sc_ctx *c, struct sc_tensor ***out) {
    struct sc_tensor **v = calloc(c->src.n ? c->src.n : 1, sizeof *v);
    if (!v) return SEMBED_ENOMEM;
    size_t k = 0;
    char n[256];
#define TAKE(...) do { snprintf(n, sizeof n, __VA_ARGS__); struct sc_tensor *t_ = sc_source_find(&c->src, n); if (t_) v[k++] = t_; } while (0)
    TAKE("embeddings.word_embeddings.weight");
    TAKE("embeddings.position_embeddings.weight");
    TAKE("embeddings.token_type_embeddings.weight");
    TAKE("embeddings.LayerNorm.weight");
    TAKE("embeddings.LayerNorm.bias");
    static const char *const parts[] = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                                        "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"};
    for (uint32_t l = 0; l < c->hp.num_layers; l++)
        for (size_t i = 0; i < 8; i++) {
            TAKE("encoder.layer.%u.%s.weight", l, parts[i]);
            TAKE("encoder.layer.%u.%s.bias", l, parts[i]);
        }
    TAKE("encoder.relative_attention_bias.weight");
    TAKE("pooler.dense.weight");
    TAKE("pooler.dense.bias");
    for (uint32_t d = 0; d < c->pool.n_dense; d++) {
        TAKE("pooling.dense.%u.weight", d);
        TAKE("pooling.dense.%u.bias", d);
    }
    TAKE("classifier.weight");
    TAKE("classifier.bias");
    TAKE("classifier.dense.weight");
    TAKE("classifier.dense.bias");
    TAKE("classifier.out_proj.weight");
    TAKE("classifier.out_proj.bias");
    TAKE("cls.predictions.transform.dense.weight");
    TAKE("cls.predictions.transform.dense.bias");
    TAKE("cls.predictions.transform.LayerNorm.weight");
    TAKE("cls.predictions.transform.LayerNorm.bias");
    TAKE("cls.predictions.bias");
#undef TAKE
    if (k != c->src.n) {
        free(v);
        return sembed_fail(SEMBED_ECORRUPT, SC_FN, "internal: %zu of %zu tensors placed", k, c->src.n);
    }
    *out = v;
    return SEMBED_OK;
}

static const char *file_type_name(enum sembed_dtype d) {
    switch (d) {
    case SEMBED_DTYPE_F16: return "f16";
    case SEMBED_DTYPE_BF16: return "bf16";
    case SEMBED_DTYPE_Q8_ROW: return "q8";
    default: return "f32";
    }
}

static int write_metadata(struct sembed_writer *w, struct sc_ctx *c, const struct sembed_convert_params *p, const char *name,
                          const char *pool_mode, bool normalize, bool has_pooler, bool has_mlm, bool int8_source,
                          const struct sc_convert_extra *x) {
    const struct sc_hparams *h = &c->hp;
    const struct sc_tok *t = &c->tok;
    int rc = 0;
    char created[32], conv[64];
    time_t now = p->created >= 0 ? (time_t)p->created : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(conv, sizeof conv, "sembed %s", sembed_version());
    uint64_t mml = h->max_position_embeddings;
    if (c->pool.st_max_seq_length) mml = c->pool.st_max_seq_length;
    else if (t->model_max_length) mml = t->model_max_length;
    if (mml > h->max_position_embeddings - h->position_offset) mml = h->max_position_embeddings - h->position_offset;
#define CK(x) do { if ((rc = (x))) return rc; } while (0)
    CK(sembed_writer_add_str(w, "general.architecture", "bert"));
    CK(sembed_writer_add_str(w, "general.name", name));
    CK(sembed_writer_add_str(w, "general.source.format", c->src.format[0] ? c->src.format : "safetensors"));
    CK(sembed_writer_add_arr_str(w, "general.source.files", (const char *const *)c->files, c->n_files));
    CK(sembed_writer_add_arr_str(w, "general.source.xxh3", (const char *const *)c->hashes, c->n_files));
    CK(sembed_writer_add_str(w, "general.converter", conv));
    CK(sembed_writer_add_str(w, "general.created", created));
    CK(sembed_writer_add_str(w, "general.file_type", file_type_name(p->dtype)));
    CK(sembed_writer_add_u32(w, "bert.vocab_size", h->vocab_size));
    CK(sembed_writer_add_u32(w, "bert.hidden_size", h->hidden_size));
    CK(sembed_writer_add_u32(w, "bert.num_layers", h->num_layers));
    CK(sembed_writer_add_u32(w, "bert.num_heads", h->num_heads));
    CK(sembed_writer_add_u32(w, "bert.intermediate_size", h->intermediate_size));
    CK(sembed_writer_add_u32(w, "bert.max_position_embeddings", h->max_position_embeddings));
    CK(sembed_writer_add_u32(w, "bert.type_vocab_size", h->type_vocab_size));
    if (h->position_offset) CK(sembed_writer_add_u32(w, "bert.position_offset", h->position_offset));
    if (h->rel_buckets) {
        CK(sembed_writer_add_u32(w, "bert.relative_attention_buckets", h->rel_buckets));
        CK(sembed_writer_add_u32(w, "bert.relative_attention_max_distance", h->rel_max_distance));
    }
    CK(sembed_writer_add_f32(w, "bert.layer_norm_eps", h->layer_norm_eps));
    CK(sembed_writer_add_str(w, "bert.hidden_act", h->hidden_act));
    CK(sembed_writer_add_f32(w, "bert.hidden_dropout", h->hidden_dropout));
    CK(sembed_writer_add_f32(w, "bert.attention_dropout", h->attention_dropout));
    CK(sembed_writer_add_bool(w, "bert.has_pooler", has_pooler));
    CK(sembed_writer_add_bool(w, "bert.has_mlm_head", has_mlm));
    CK(sembed_writer_add_str(w, "bert.source_architecture", h->source_arch));
    if (t->hf_json) { // a tokenizer.json of another pipeline, kept whole (docs/format.md)
        CK(sembed_writer_add_str(w, "tokenizer.model", "hf_json"));
        CK(sembed_writer_add_str(w, "tokenizer.json", t->hf_json));
        CK(sembed_writer_add_u32(w, "tokenizer.model_max_length", (uint32_t)mml));
        goto tokenizer_done;
    }
    CK(sembed_writer_add_str(w, "tokenizer.model", "wordpiece"));
    CK(sembed_writer_add_arr_str(w, "tokenizer.vocab", (const char *const *)t->vocab, t->n_vocab));
    CK(sembed_writer_add_bool(w, "tokenizer.lowercase", t->lowercase));
    CK(sembed_writer_add_bool(w, "tokenizer.strip_accents", t->strip_accents));
    CK(sembed_writer_add_bool(w, "tokenizer.handle_chinese_chars", t->handle_chinese_chars));
    CK(sembed_writer_add_bool(w, "tokenizer.clean_text", t->clean_text));
    if (t->pre_lowercase >= 0) CK(sembed_writer_add_bool(w, "tokenizer.pre_lowercase", t->pre_lowercase != 0));
    CK(sembed_writer_add_str(w, "tokenizer.unk_token", t->unk));
    CK(sembed_writer_add_str(w, "tokenizer.cls_token", t->cls));
    CK(sembed_writer_add_str(w, "tokenizer.sep_token", t->sep));
    CK(sembed_writer_add_str(w, "tokenizer.pad_token", t->pad));
    if (t->mask) CK(sembed_writer_add_str(w, "tokenizer.mask_token", t->mask));
    CK(sembed_writer_add_str(w, "tokenizer.continuing_prefix", t->prefix));
    CK(sembed_writer_add_u32(w, "tokenizer.max_input_chars_per_word", t->max_chars));
    CK(sembed_writer_add_u32(w, "tokenizer.model_max_length", (uint32_t)mml));
    // The WordPiece lookup tables prebuilt, so a load uses them in place (docs/format.md).
    CK(sembed_writer_add_tokenizer_index(w, (const char *const *)t->vocab, t->n_vocab, t->prefix));
tokenizer_done:
    if (h->num_labels) {
        CK(sembed_writer_add_u32(w, "classifier.num_labels", h->num_labels));
        CK(sembed_writer_add_str(w, "classifier.head", h->roberta || h->mpnet ? "roberta" : "bert"));
        CK(sembed_writer_add_str(w, "classifier.activation", h->cls_activation));
    }
    CK(sembed_writer_add_str(w, "pooling.mode", pool_mode));
    CK(sembed_writer_add_bool(w, "pooling.normalize", normalize));
    CK(sembed_writer_add_u32(w, "pooling.dense_count", c->pool.n_dense));
    for (uint32_t d = 0; d < c->pool.n_dense; d++) {
        char key[64];
        snprintf(key, sizeof key, "pooling.dense.%u.activation", d);
        CK(sembed_writer_add_str(w, key, c->pool.dense_act[d]));
    }
    if (p->dtype == SEMBED_DTYPE_Q8_ROW) CK(sembed_writer_add_str(w, "quant.method", "q8_row"));
    else if (int8_source) CK(sembed_writer_add_str(w, "quant.method", "onnx-int8"));
    for (size_t i = 0; i < x->n_meta; i++) CK(sc_meta_write(w, &x->meta[i]));
#undef CK
    return SEMBED_OK;
}

static bool valid_pool_mode(const char *m) {
    static const char *const ok[] = {"cls", "cls_before_pooler", "mean", "max", "first_last_avg"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(m, ok[i])) return true;
    return false;
}

// general.name default: the source folder's (or file's folder's) last component.
static void default_name(const char *root, char *out, size_t cap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", root);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    const char *b = strrchr(tmp, '/');
    b = b ? b + 1 : tmp;
    char cwd[4096];
    if (!*b || !strcmp(b, ".")) {
        if (getcwd(cwd, sizeof cwd)) { const char *cb = strrchr(cwd, '/'); b = cb ? cb + 1 : cwd; }
    }
    if (!*b) b = "model";
    size_t k = strlen(b);
    if (k >= cap) k = cap - 1;
    memcpy(out, b, k);
    out[k] = 0;
}

void sc_ctx_free(struct sc_ctx *c) {
    sc_source_free(&c->src);
    for (size_t i = 0; i < c->n_maps; i++) munmap(c->maps[i].p, c->maps[i].n);
    free(c->maps);
    for (size_t i = 0; i < c->n_files; i++) { free(c->files[i]); free(c->hashes[i]); }
    free(c->files);
    free(c->hashes);
    sc_tok_free(&c->tok);
}

SEMBED_API int sembed_convert(const struct sembed_convert_params *p) {
    const struct sc_convert_extra x = {.meta = NULL, .n_meta = 0, .calibrate = -1};
    return sc_convert_ex(p, &x);
}

// Calibrate the int8 model just written and rewrite it with the quant.calib_* keys. A model the
// runtime cannot run is still a valid conversion: that is logged, not an error.
static int calibrate_output(const char *path) {
    struct sc_calib cal;
    int rc = sc_calibrate(path, &cal);
    if (rc) {
        SEMBED_LOG_WARNF("%s: int8 calibration skipped: the runtime cannot embed with this model (%s)", path,
                         sembed_strerror(rc));
        return SEMBED_OK;
    }
    struct sc_meta kv[3];
    memset(kv, 0, sizeof kv);
    snprintf(kv[0].key, sizeof kv[0].key, "quant.calib_cos_mean");
    kv[0].type = SEMBED_TYPE_F32;
    kv[0].v.f = cal.cos_mean;
    snprintf(kv[1].key, sizeof kv[1].key, "quant.calib_cos_min");
    kv[1].type = SEMBED_TYPE_F32;
    kv[1].v.f = cal.cos_min;
    snprintf(kv[2].key, sizeof kv[2].key, "quant.calib_count");
    kv[2].type = SEMBED_TYPE_U32;
    kv[2].v.u = cal.count;
    rc = sc_rewrite_with_meta(path, kv, 3);
    if (rc == 0)
        SEMBED_LOG_INFOF("%s: int8 vs f32 on %u calibration sentences: cosine mean %.6f, min %.6f", path, cal.count,
                         cal.cos_mean, cal.cos_min);
    return rc;
}

int sc_convert_ex(const struct sembed_convert_params *p, const struct sc_convert_extra *x) {
    if (!p || !p->src || !p->out) return sembed_fail(SEMBED_EINVAL, SC_FN, "src and out are required");
    if (p->dtype != SEMBED_DTYPE_F32 && p->dtype != SEMBED_DTYPE_F16 && p->dtype != SEMBED_DTYPE_BF16 && p->dtype != SEMBED_DTYPE_Q8_ROW)
        return sembed_fail(SEMBED_EINVAL, SC_FN, "dtype %s is not a conversion target (f32, f16, bf16, q8_row)", sembed_dtype_name(p->dtype));
    if (p->pooling && !valid_pool_mode(p->pooling))
        return sembed_fail(SEMBED_EINVAL, SC_FN, "pooling \"%s\" is not one of cls, cls_before_pooler, mean, max, first_last_avg", p->pooling);
    struct sc_ctx c;
    memset(&c, 0, sizeof c);
    c.tok.pre_lowercase = -1;
    c.pool.normalize = -1;
    char *root = NULL, *file = NULL, *model_dir = NULL;
    struct sc_tensor **order = NULL;
    struct sembed_writer *w = NULL;
    struct wstate ws = {0};
    int rc;
    if (sc_is_dir(p->src)) {
        root = strdup(p->src);
    } else if (sc_is_file(p->src)) {
        file = strdup(p->src);
        const char *slash = strrchr(p->src, '/');
        root = slash ? strndup(p->src, (size_t)(slash - p->src) + (slash == p->src)) : strdup(".");
    } else {
        return sembed_fail(SEMBED_ENOTFOUND, SC_FN, "%s: no such file or folder", p->src);
    }
    if (!root || (!file && sc_is_file(p->src))) { rc = SEMBED_ENOMEM; goto done; }
    c.root = root;
    // 1. sentence-transformers modules (tell where the Transformer lives), then the model itself.
    if (file) {
        model_dir = strdup(root);
        if (!model_dir) { rc = SEMBED_ENOMEM; goto done; }
    } else if ((rc = sc_hf_st_modules(&c, root, &model_dir))) {
        goto done;
    }
    if ((rc = sc_hf_config(&c, model_dir, false))) goto done;
    bool onnx;
    if ((rc = load_model_weights(&c, file, model_dir, &onnx))) goto done;
    if (onnx) {
        if ((rc = merge_graph_hparams(&c))) goto done;
    } else if (!c.hp.from_config) {
        rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: no config.json next to the weights (needed for the architecture and head count)", model_dir);
        goto done;
    }
    if ((rc = sc_hf_tokenizer(&c, model_dir))) goto done;
    if (c.tok.n_vocab > c.hp.vocab_size) {
        rc = sembed_fail(SEMBED_EDIMS, SC_FN, "tokenizer has %zu tokens but the word embedding only %u rows", c.tok.n_vocab, c.hp.vocab_size);
        goto done;
    }
    if (c.tok.n_vocab < c.hp.vocab_size)
        SEMBED_LOG_INFOF("tokenizer has %zu tokens, the word embedding %u rows (the extra rows are unused)", c.tok.n_vocab, c.hp.vocab_size);
    // 2. canonical names, shapes, nothing unknown.
    bool has_pooler = false, has_mlm = false;
    if ((rc = sc_hf_canonicalize(&c, p->keep_mlm_head))) goto done;
    if ((rc = sc_hf_validate(&c, p->keep_mlm_head, &has_pooler, &has_mlm))) goto done;
    if ((rc = canonical_order(&c, &order))) goto done;
    // 3. pooling: explicit flag > what the source declares > mean (sentence-transformers' default).
    const char *mode = p->pooling ? p->pooling : c.pool.mode[0] ? c.pool.mode : c.hp.num_labels ? (has_pooler ? "cls" : "cls_before_pooler") : "mean";
    if (!strcmp(mode, "cls") && !has_pooler)
        SEMBED_LOG_WARNF("pooling cls on a model without pooler: the runtime uses the raw [CLS] state (cls_before_pooler)");
    bool normalize = p->normalize >= 0 ? p->normalize != 0 : c.pool.normalize > 0;
    if (c.hp.num_labels && (normalize || c.pool.n_dense)) {
        rc = sembed_fail(SEMBED_EINVAL, SC_FN, "a cross-encoder (%s) scores pairs: normalization and Dense layers do not apply",
                         c.hp.source_arch);
        goto done;
    }
    char name[256];
    if (p->name) snprintf(name, sizeof name, "%s", p->name);
    else default_name(root, name, sizeof name);
    // 4. write: metadata, tensor directory, then the bytes tensor by tensor.
    if ((rc = sembed_writer_create(p->out, &w))) goto done;
    bool int8_source = false;
    for (size_t i = 0; i < c.src.n; i++) int8_source |= c.src.t[i].dtype == SEMBED_DTYPE_Q8_ROW;
    if ((rc = write_metadata(w, &c, p, name, mode, normalize, has_pooler, has_mlm, int8_source, x))) goto done;
    size_t max_cols = 1;
    for (size_t i = 0; i < c.src.n; i++) {
        struct sc_tensor *t = order[i];
        enum sembed_dtype od = out_dtype(t, p->dtype);
        if ((rc = sembed_writer_add_tensor(w, t->name, od, t->n_dims, t->dims))) goto done;
        ws.total += sembed_dtype_nbytes(od, t->n_dims, t->dims);
        if ((size_t)t->dims[t->n_dims - 1] > max_cols) max_cols = (size_t)t->dims[t->n_dims - 1];
    }
    ws.c = &c;
    ws.w = w;
    ws.p = p;
    ws.cap = (size_t)1 << 20;
    if (ws.cap < max_cols) ws.cap = max_cols;
    ws.buf = malloc(ws.cap);
    ws.row = malloc(max_cols * sizeof *ws.row);
    if (!ws.buf || !ws.row) { rc = SEMBED_ENOMEM; goto done; }
    for (size_t i = 0; i < c.src.n; i++) {
        struct sc_tensor *t = order[i];
        if ((rc = write_tensor(&ws, t, out_dtype(t, p->dtype)))) goto done;
        release_pages(&c, t->data, (size_t)sembed_dtype_nbytes(t->dtype, t->n_dims, t->dims));
    }
    rc = sembed_writer_finish(w);
    w = NULL;
    if (rc == 0)
        SEMBED_LOG_INFOF("%s: %zu tensors, %s, pooling %s%s", p->out, c.src.n, file_type_name(p->dtype), mode, normalize ? " + normalize" : "");
    if (rc == 0 && (x->calibrate > 0 || (x->calibrate < 0 && (p->dtype == SEMBED_DTYPE_Q8_ROW || int8_source)))) {
        sc_ctx_free(&c); // the source mappings are no longer needed: keep peak memory down
        memset(&c, 0, sizeof c);
        rc = calibrate_output(p->out);
    }
done:
    sembed_writer_free(w);
    free(ws.buf);
    free(ws.row);
    free(order);
    free(model_dir);
    free(file);
    sc_ctx_free(&c);
    free(root);
    return rc;
}
