// Character classes for the BERT tokenizer, matching HuggingFace tokenizers (see unicode.h).
#include "runtime/tokenizer/unicode.h"

#include <utf8proc.h>

#include "runtime/tokenizer/compat.h"

size_t tk_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) { *cp = b0; return 1; }
    // Well-formed sequences, Unicode 15 Table 3-7: the lead byte fixes the length and the range of
    // the second byte; later bytes are 80..BF.
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; c = b0 & 0x1Fu; }
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3; c = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;
        else if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4; c = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F;
    } else { *cp = 0xFFFD; return 1; }
    for (size_t i = 1; i < len; i++) {
        if (i >= n) { *cp = 0xFFFD; return i; }
        uint8_t b = s[i];
        if (b < lo || b > hi) { *cp = 0xFFFD; return i; } // maximal subpart = the bytes so far
        c = (c << 6) | (b & 0x3Fu);
        lo = 0x80; hi = 0xBF;
    }
    *cp = c;
    return len;
}

size_t tk_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int category(uint32_t cp) { return (int)utf8proc_category((utf8proc_int32_t)cp); }

bool tk_is_whitespace(uint32_t cp) {
    // White_Space = U+0009..000D, U+0085 and the Zs, Zl, Zp characters (PropList.txt).
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    if (cp == 0x85) return true;
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

bool tk_is_control(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    int o = tk_compat_lookup(cp);
    if (o >= 0) return o == TK_HF_OTHER;
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO;
}

bool tk_is_punct(uint32_t cp) {
    if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                          (cp >= 123 && cp <= 126);
    int o = tk_compat_lookup(cp);
    if (o >= 0) return o == TK_HF_PUNCT;
    int c = category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool tk_is_mn(uint32_t cp) {
    if (cp < 0x300) return false;
    int o = tk_compat_lookup(cp);
    if (o >= 0) return o == TK_HF_MN;
    return category(cp) == UTF8PROC_CATEGORY_MN;
}

bool tk_is_chinese(uint32_t cp) {
    // HF tokenizers' is_chinese_char (bert normalizer). Note 0x2B920, where Google BERT's Python
    // has 0x2B820: the tested behaviour of HF is what we match.
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int tk_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    return (int)utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

size_t tk_nfd(uint32_t cp, uint32_t *out, size_t cap) {
    if (cp < 0xC0 || tk_compat_keeps_composed(cp)) { out[0] = cp; return 1; }
    utf8proc_int32_t buf[16];
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 16, UTF8PROC_DECOMPOSE, NULL);
    if (n <= 0 || (size_t)n > cap || n > 16) { out[0] = cp; return 1; }
    for (utf8proc_ssize_t i = 0; i < n; i++) out[i] = (uint32_t)buf[i];
    return (size_t)n;
}

size_t tk_lower_rust(uint32_t cp, uint32_t out[2]) {
    if (cp < 0x80) { out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; return 1; }
    // SpecialCasing.txt: the one unconditional multi-character lowercase mapping.
    if (cp == 0x130) { out[0] = 'i'; out[1] = 0x307; return 2; }
    uint32_t c = tk_compat_lower(cp);
    out[0] = c ? c : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

// Unicode's Cased and Case_Ignorable (DerivedCoreProperties.txt), derived from categories:
// Cased = Lu, Ll, Lt, or anything with a case mapping, plus the Other_Lowercase letters ª º;
// Case_Ignorable = Mn, Me, Cf, Lm, Sk, or Word_Break MidLetter / MidNumLet / Single_Quote.
static bool is_cased(uint32_t cp) {
    int c = category(cp);
    if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT) return true;
    if (cp == 0xAA || cp == 0xBA) return true;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp) != cp || (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp) != cp;
}

static bool is_case_ignorable(uint32_t cp) {
    switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
    case 0xFF0E: case 0xFF1A:
        return true;
    default: break;
    }
    int c = category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

size_t tk_lower_python(const uint32_t *in, size_t n, uint32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        if (cp == 0x3A3) {
            // Final_Sigma (Unicode 15 section 3.13): preceded by a cased letter (skipping
            // case-ignorables) and not followed by one.
            size_t j = i;
            while (j > 0 && is_case_ignorable(in[j - 1])) j--;
            bool final = j > 0 && is_cased(in[j - 1]);
            if (final) {
                size_t m = i + 1;
                while (m < n && is_case_ignorable(in[m])) m++;
                final = m == n || !is_cased(in[m]);
            }
            out[k++] = final ? 0x3C2 : 0x3C3;
            continue;
        }
        uint32_t lw[2];
        size_t c = tk_lower_rust(cp, lw);
        for (size_t q = 0; q < c; q++) out[k++] = lw[q];
    }
    return k;
}
