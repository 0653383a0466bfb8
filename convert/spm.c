// A SentencePiece .model (sentencepiece.bpe.model of XLM-R, spiece.model of ALBERT / T5) -> the
// tokenizer.json HF's converters build from it (transformers convert_slow_tokenizer: SpmConverter
// and XLMRobertaConverter), so that it is stored and run like any other tokenizer.json:
//   normalizer   Sequence[Precompiled(normalizer_spec.precompiled_charsmap), Replace(" {2,}", " ")]
//   pre-tokenizer Sequence[WhitespaceSplit, Metaspace("\u2581", prepend_scheme always | never
//                 from add_dummy_prefix, split)]
//   model        Unigram(pieces, scores, unk_id, byte_fallback)
// XLM-R (fairseq ids): <s> <pad> </s> <unk> are ids 0-3, the model's pieces from its 4th on keep
// their order at sentencepiece id + 1, <mask> is appended (lstrip), and the template is
// <s> $A </s> / <s> $A </s> </s> $B </s>. Otherwise the pieces keep their ids, the model's unk_id,
// and the control / unknown pieces become special added tokens (no post-processor).
// Only Unigram models: BPE .model files (merges rebuilt from scores by HF) are refused by name.
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "convert/internal.h"
#include "formats/log.h"
#include "runtime/tokenizer/unicode.h"
#include "sembed/tokenizer.h"
#include "sentencepiece_min.pb-c.h"

#define SPM_MAX_BYTES (256u << 20) // a .model larger than this is refused (bge-m3's is 5 MB)

static bool utf8_ok(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = tk_utf8_decode(s + i, n - i, &c);
        if (c == 0 || (c == 0xFFFD && !(k == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && s[i + 2] == 0xBD))) return false;
        i += k;
    }
    return true;
}

static json_object *jstr(const uint8_t *s, size_t n) { return json_object_new_string_len((const char *)s, (int)n); }

static json_object *added(int64_t id, const char *s, size_t n, bool lstrip) {
    json_object *a = json_object_new_object();
    json_object_object_add(a, "id", json_object_new_int64(id));
    json_object_object_add(a, "content", json_object_new_string_len(s, (int)n));
    json_object_object_add(a, "single_word", json_object_new_boolean(0));
    json_object_object_add(a, "lstrip", json_object_new_boolean(lstrip));
    json_object_object_add(a, "rstrip", json_object_new_boolean(0));
    json_object_object_add(a, "normalized", json_object_new_boolean(0));
    json_object_object_add(a, "special", json_object_new_boolean(1));
    return a;
}

static json_object *tpl(const char *kind, const char *id) {
    json_object *o = json_object_new_object(), *in = json_object_new_object();
    json_object_object_add(in, "id", json_object_new_string(id));
    json_object_object_add(in, "type_id", json_object_new_int(0));
    json_object_object_add(o, kind, in);
    return o;
}

static json_object *tpl_special(const char *tok, int64_t id) {
    json_object *o = json_object_new_object(), *ids = json_object_new_array(), *toks = json_object_new_array();
    json_object_array_add(ids, json_object_new_int64(id));
    json_object_array_add(toks, json_object_new_string(tok));
    json_object_object_add(o, "id", json_object_new_string(tok));
    json_object_object_add(o, "ids", ids);
    json_object_object_add(o, "tokens", toks);
    return o;
}

int sc_spm_to_hf_json(const void *buf, size_t len, bool xlmr, const char *what, char **out) {
    *out = NULL;
    if (len > SPM_MAX_BYTES) return sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: %zu bytes (at most %u MiB)", what, len, SPM_MAX_BYTES >> 20);
    SembedSpm__ModelProto *m = sembed_spm__model_proto__unpack(NULL, len, buf);
    if (!m) return sembed_fail(SEMBED_EPARSE, SC_FN, "%s: not a SentencePiece model (protobuf ModelProto did not parse)", what);
    int rc = SEMBED_OK;
    json_object *root = NULL;
    const SembedSpm__TrainerSpec *ts = m->trainer_spec;
    int32_t model_type = ts && ts->has_model_type ? ts->model_type : 1;
    if (model_type != 1) {
        static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s: model_type %s is not supported (only Unigram .model files; use the checkpoint's tokenizer.json)",
                         what, model_type >= 1 && model_type <= 4 ? names[model_type] : "unknown");
        goto done;
    }
    size_t n = m->n_pieces;
    if (n == 0 || n > (1u << 24) || (xlmr && n < 4)) {
        rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: %zu pieces", what, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const SembedSpm__ModelProto__SentencePiece *p = m->pieces[i];
        if (!p->has_piece || p->piece.len == 0 || p->piece.len > 4096 || !utf8_ok(p->piece.data, p->piece.len)) {
            rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: piece %zu is empty, too long or not UTF-8", what, i);
            goto done;
        }
        if (p->has_type && (p->type < 1 || p->type > 6)) {
            rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: piece %zu has type %d (1..6)", what, i, p->type);
            goto done;
        }
        if (p->has_score && !(p->score == p->score && p->score > -1e30f && p->score < 1e30f)) {
            rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: piece %zu has score %g", what, i, (double)p->score);
            goto done;
        }
    }
    int64_t unk = xlmr ? 3 : (ts && ts->has_unk_id ? ts->unk_id : 0);
    if (unk < 0 || (size_t)unk >= n) {
        rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: unk_id %lld is outside the %zu pieces", what, (long long)unk, n);
        goto done;
    }
    const SembedSpm__NormalizerSpec *ns = m->normalizer_spec;
    bool dummy = ns && ns->has_add_dummy_prefix ? ns->add_dummy_prefix : true;

    root = json_object_new_object();
    json_object *model = json_object_new_object(), *vocab = json_object_new_array(), *add = json_object_new_array();
    json_object_object_add(root, "version", json_object_new_string("1.0"));
    json_object_object_add(root, "added_tokens", add);
    static const char *const fair[] = {"<s>", "<pad>", "</s>", "<unk>"};
    if (xlmr)
        for (int i = 0; i < 4; i++) {
            json_object *v = json_object_new_array();
            json_object_array_add(v, json_object_new_string(fair[i]));
            json_object_array_add(v, json_object_new_double(0.0));
            json_object_array_add(vocab, v);
            json_object_array_add(add, added(i, fair[i], strlen(fair[i]), false));
        }
    for (size_t i = xlmr ? 3 : 0; i < n; i++) {
        const SembedSpm__ModelProto__SentencePiece *p = m->pieces[i];
        json_object *v = json_object_new_array();
        json_object_array_add(v, jstr(p->piece.data, p->piece.len));
        json_object_array_add(v, json_object_new_double(p->has_score ? (double)p->score : 0.0));
        json_object_array_add(vocab, v);
        int32_t ty = p->has_type ? p->type : 1;
        if (!xlmr && (ty == 2 || ty == 3)) json_object_array_add(add, added((int64_t)i, (const char *)p->piece.data, p->piece.len, false));
    }
    if (xlmr) {
        json_object *v = json_object_new_array();
        json_object_array_add(v, json_object_new_string("<mask>"));
        json_object_array_add(v, json_object_new_double(0.0));
        json_object_array_add(vocab, v);
        json_object_array_add(add, added((int64_t)n + 1, "<mask>", 6, true));
    }
    json_object_object_add(model, "type", json_object_new_string("Unigram"));
    json_object_object_add(model, "unk_id", json_object_new_int64(unk));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(ts && ts->has_byte_fallback && ts->byte_fallback));

    json_object *norm = json_object_new_object(), *norms = json_object_new_array();
    json_object_object_add(norm, "type", json_object_new_string("Sequence"));
    json_object_object_add(norm, "normalizers", norms);
    if (ns && ns->has_precompiled_charsmap && ns->precompiled_charsmap.len) {
        // tokenizer.json carries the blob in base64 (HF's serde for Precompiled).
        const uint8_t *b = ns->precompiled_charsmap.data;
        size_t bl = ns->precompiled_charsmap.len, k = 0;
        char *b64 = malloc((bl + 2) / 3 * 4 + 1);
        if (!b64) { rc = SEMBED_ENOMEM; goto done; }
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (size_t i = 0; i < bl; i += 3) {
            uint32_t x = (uint32_t)b[i] << 16 | (i + 1 < bl ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < bl ? b[i + 2] : 0);
            b64[k++] = al[x >> 18 & 63];
            b64[k++] = al[x >> 12 & 63];
            b64[k++] = i + 1 < bl ? al[x >> 6 & 63] : '=';
            b64[k++] = i + 2 < bl ? al[x & 63] : '=';
        }
        json_object *pc = json_object_new_object();
        json_object_object_add(pc, "type", json_object_new_string("Precompiled"));
        json_object_object_add(pc, "precompiled_charsmap", json_object_new_string_len(b64, (int)k));
        json_object_array_add(norms, pc);
        free(b64);
    }
    json_object *rep = json_object_new_object(), *pat = json_object_new_object();
    json_object_object_add(pat, "Regex", json_object_new_string(" {2,}"));
    json_object_object_add(rep, "type", json_object_new_string("Replace"));
    json_object_object_add(rep, "pattern", pat);
    json_object_object_add(rep, "content", json_object_new_string(" "));
    json_object_array_add(norms, rep);
    json_object_object_add(root, "normalizer", norm);

    json_object *pre = json_object_new_object(), *pres = json_object_new_array(), *ws = json_object_new_object(),
                *ms = json_object_new_object();
    json_object_object_add(ws, "type", json_object_new_string("WhitespaceSplit"));
    json_object_object_add(ms, "type", json_object_new_string("Metaspace"));
    json_object_object_add(ms, "replacement", json_object_new_string("\xe2\x96\x81"));
    json_object_object_add(ms, "prepend_scheme", json_object_new_string(dummy ? "always" : "never"));
    json_object_object_add(ms, "split", json_object_new_boolean(1));
    json_object_array_add(pres, ws);
    json_object_array_add(pres, ms);
    json_object_object_add(pre, "type", json_object_new_string("Sequence"));
    json_object_object_add(pre, "pretokenizers", pres);
    json_object_object_add(root, "pre_tokenizer", pre);

    if (xlmr) {
        json_object *pp = json_object_new_object(), *single = json_object_new_array(), *pair = json_object_new_array(),
                    *sp = json_object_new_object();
        json_object_array_add(single, tpl("SpecialToken", "<s>"));
        json_object_array_add(single, tpl("Sequence", "A"));
        json_object_array_add(single, tpl("SpecialToken", "</s>"));
        json_object_array_add(pair, tpl("SpecialToken", "<s>"));
        json_object_array_add(pair, tpl("Sequence", "A"));
        json_object_array_add(pair, tpl("SpecialToken", "</s>"));
        json_object_array_add(pair, tpl("SpecialToken", "</s>"));
        json_object_array_add(pair, tpl("Sequence", "B"));
        json_object_array_add(pair, tpl("SpecialToken", "</s>"));
        json_object_object_add(sp, "<s>", tpl_special("<s>", 0));
        json_object_object_add(sp, "</s>", tpl_special("</s>", 2));
        json_object_object_add(pp, "type", json_object_new_string("TemplateProcessing"));
        json_object_object_add(pp, "single", single);
        json_object_object_add(pp, "pair", pair);
        json_object_object_add(pp, "special_tokens", sp);
        json_object_object_add(root, "post_processor", pp);
    }
    json_object_object_add(root, "model", model);

    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    struct sembed_tokenizer *tk = NULL;
    rc = sembed_tokenizer_from_hf_json(text, strlen(text), 0, &tk);
    if (rc) { rc = sembed_fail(rc, SC_FN, "%s cannot be used (see the message above)", what); goto done; }
    sembed_tokenizer_free(tk);
    if (!(*out = strdup(text))) rc = SEMBED_ENOMEM;
done:
    json_object_put(root);
    sembed_spm__model_proto__free_unpacked(m, NULL);
    return rc;
}
