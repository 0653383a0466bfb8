// The repository on its own (issue 19): `sembed --version` names the git revision; the man pages
// and the bash completion made by the build (tools/gen-man.sh, tools/gen-completion.sh) cover
// every subcommand and option that the CLI's --help lists; data files are found by one rule
// (tu_data_file, tools/datafile.sh, tools/datafile.py agree); the vendored data/ files are the
// ones data/README.md names by sha256. The options are parsed here independently of the
// generators' awk/grep.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sembed/common.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

struct words {
    char **w;
    size_t n, cap;
};

static void words_add(struct words *ws, const char *s, size_t len) {
    for (size_t i = 0; i < ws->n; i++)
        if (strlen(ws->w[i]) == len && !strncmp(ws->w[i], s, len)) return;
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? 2 * ws->cap : 16;
        ws->w = realloc(ws->w, ws->cap * sizeof *ws->w);
        cr_assert(ws->w);
    }
    ws->w[ws->n++] = strndup(s, len);
}

static bool words_has(const struct words *ws, const char *s) {
    for (size_t i = 0; i < ws->n; i++)
        if (!strcmp(ws->w[i], s)) return true;
    return false;
}

static void words_free(struct words *ws) {
    for (size_t i = 0; i < ws->n; i++) free(ws->w[i]);
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

// Output of `sembed ARGS` (stdout and stderr); asserts exit status `want`.
static char *cli(const char *args, int want) {
    char *cmd = NULL, *out = NULL;
    cr_assert(asprintf(&cmd, "'%s' %s 2>&1", tu_cli(), args) > 0);
    int st = tu_run(cmd, &out);
    cr_assert(out, "no output from %s", cmd);
    cr_assert_eq(st, want, "%s: expected exit %d, got %d; output:\n%s", cmd, want, st, out);
    free(cmd);
    return out;
}

// Subcommands: the lines "  name  description" under "commands:" in `sembed --help`.
static void subcommands(struct words *ws) {
    char *help = cli("--help", 0);
    char *p = strstr(help, "\ncommands:\n");
    cr_assert(p, "no 'commands:' block in sembed --help:\n%s", help);
    p += strlen("\ncommands:\n");
    while (*p && *p != '\n') {
        char *nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p);
        if (p[0] == ' ' && p[1] == ' ' && islower((unsigned char)p[2])) {
            const char *s = p + 2, *e = s;
            while (*e && !isspace((unsigned char)*e)) e++;
            words_add(ws, s, (size_t)(e - s));
        }
        p = *nl ? nl + 1 : nl;
    }
    free(help);
    cr_assert_geq(ws->n, 10, "expected at least the 10 subcommands of issue 19's time, got %zu", ws->n);
}

// Options of `sembed CMD --help`: on each line that starts with 2 to 8 spaces and '-', the
// tokens that start with '-' in the option column (before the first run of two spaces).
static void options_of(const char *cmd, struct words *ws) {
    char args[256];
    snprintf(args, sizeof args, "%s --help", cmd);
    char *help = cli(args, 0);
    for (char *line = help; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line);
        size_t sp = 0;
        while (line + sp < nl && line[sp] == ' ') sp++;
        if (sp >= 2 && sp <= 8 && line[sp] == '-') {
            const char *col = line + sp, *end = col;
            while (end < nl && !(end[0] == ' ' && end + 1 < nl && end[1] == ' ')) end++;
            for (const char *t = col; t < end;) {
                while (t < end && (*t == ' ' || *t == ',')) t++;
                const char *te = t;
                while (te < end && *te != ' ' && *te != ',') te++;
                if (te - t >= 2 && t[0] == '-' && (isalnum((unsigned char)t[1]) || (t[1] == '-' && te - t >= 3)))
                    words_add(ws, t, (size_t)(te - t));
                t = te;
            }
        }
        line = *nl ? nl + 1 : nl;
    }
    free(help);
    cr_assert_gt(ws->n, 0, "no options found in sembed %s --help", cmd);
}

// `needle` occurs in `hay` as a whole option (not followed by a letter, digit or '-').
static bool has_option(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        char before = p == hay ? ' ' : p[-1], after = p[n];
        if ((isalnum((unsigned char)before) || before == '-')) continue;
        if (!isalnum((unsigned char)after) && after != '-') return true;
    }
    return false;
}

/* ------------------------------------------------------------------ --version */

Test(repo, version_names_version_and_git_revision) {
    char *out = cli("--version", 0);
    char *nl = strchr(out, '\n');
    cr_assert(nl, "no line in sembed --version: %s", out);
    *nl = 0;
    char *src_git = NULL, *rev = NULL;
    cr_assert(asprintf(&src_git, "%s/.git", tu_source_dir()) > 0);
    char want_unknown[256];
    snprintf(want_unknown, sizeof want_unknown, "sembed %s (git unknown)", sembed_version());
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", tu_source_dir()) > 0);
    if (getenv("SEMBED_GIT_REVISION") && *getenv("SEMBED_GIT_REVISION")) {
        cr_skip_test("SEMBED_GIT_REVISION is set: the build took the revision from it");
    } else if (!tu_file_exists(src_git) || tu_run(cmd, &rev) != 0 || !rev || strlen(rev) < 12) {
        cr_expect_str_eq(out, want_unknown, "outside a git checkout: expected '%s', got '%s'", want_unknown, out);
    } else {
        rev[12] = 0;
        char want[256], want_dirty[256];
        snprintf(want, sizeof want, "sembed %s (git %s)", sembed_version(), rev);
        snprintf(want_dirty, sizeof want_dirty, "sembed %s (git %s-dirty)", sembed_version(), rev);
        cr_expect(!strcmp(out, want) || !strcmp(out, want_dirty), "expected '%s' (or with -dirty), got '%s'", want,
                  out);
    }
    free(cmd);
    free(rev);
    free(src_git);
    free(out);
}

/* ------------------------------------------------------------------ man pages and completion */

Test(repo, man_page_for_every_subcommand_lists_its_options) {
    const char *dir = SEMBED_BINARY_DIR "/doc/man1";
    if (!tu_file_exists(dir)) {
        if (tu_run("command -v help2man >/dev/null 2>&1", NULL) == 0)
            cr_assert_fail("help2man is installed but %s was not made (reconfigure: cmake finds it then)", dir);
        cr_skip_test("help2man is not installed: the build makes no man pages");
    }
    struct words cmds = {0};
    subcommands(&cmds);
    for (size_t i = 0; i <= cmds.n; i++) {
        const char *name = i < cmds.n ? cmds.w[i] : NULL;
        char *cmd = NULL, *page = NULL, *file = NULL;
        cr_assert(asprintf(&file, "%s/sembed%s%s.1.gz", dir, name ? "-" : "", name ? name : "") > 0);
        cr_assert(tu_file_exists(file), "no man page %s for %s", file, name ? name : "sembed");
        cr_assert(asprintf(&cmd, "zcat '%s' | sed -e 's/\\\\f[BIRP]//g' -e 's/\\\\-/-/g'", file) > 0);
        int st = tu_run(cmd, &page);
        cr_assert(st == 0 && page && strstr(page, ".TH "), "cannot read the man page %s: %s", file, cmd);
        free(file);
        if (!name) {  // the main page lists every subcommand and points to its page
            for (size_t k = 0; k < cmds.n; k++) {
                char ref[128];
                snprintf(ref, sizeof ref, "sembed-%s", cmds.w[k]);
                cr_expect(has_option(page, cmds.w[k]), "sembed.1 does not name subcommand %s", cmds.w[k]);
                cr_expect(strstr(page, ref), "sembed.1 has no SEE ALSO entry %s", ref);
            }
        } else {
            struct words opts = {0};
            options_of(name, &opts);
            for (size_t k = 0; k < opts.n; k++)
                cr_expect(has_option(page, opts.w[k]), "sembed-%s.1 lacks option %s of 'sembed %s --help'", name,
                          opts.w[k], name);
            words_free(&opts);
        }
        free(page);
        free(cmd);
    }
    words_free(&cmds);
}

// COMPREPLY of the generated completion for the words `line` (the last one is completed).
static void complete(const char *line, struct words *out) {
    char *cmd = NULL, *txt = NULL;
    cr_assert(asprintf(&cmd,
                       "bash -c 'source \"$1\" && COMP_WORDS=(%s) && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _sembed "
                       "&& printf \"%%s\\n\" \"${COMPREPLY[@]}\"' _ '%s/doc/bash-completion/sembed'",
                       line, SEMBED_BINARY_DIR) > 0);
    int st = tu_run(cmd, &txt);
    cr_assert_eq(st, 0, "completion failed (exit %d): %s\n%s", st, cmd, txt ? txt : "");
    for (char *p = txt; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p);
        if (nl > p) words_add(out, p, (size_t)(nl - p));
        p = *nl ? nl + 1 : nl;
    }
    free(txt);
    free(cmd);
}

Test(repo, bash_completion_offers_every_subcommand_and_option) {
    cr_assert(tu_file_exists(SEMBED_BINARY_DIR "/doc/bash-completion/sembed"), "the build made no bash completion");
    struct words cmds = {0}, first = {0};
    subcommands(&cmds);
    complete("sembed \"\"", &first);
    for (size_t i = 0; i < cmds.n; i++) cr_expect(words_has(&first, cmds.w[i]), "first word: %s not offered", cmds.w[i]);
    cr_expect(words_has(&first, "--help") && words_has(&first, "--version"), "first word: --help/--version not offered");
    cr_expect_eq(first.n, cmds.n + 2, "first word: expected %zu candidates, got %zu", cmds.n + 2, first.n);
    for (size_t i = 0; i < cmds.n; i++) {
        struct words opts = {0}, got = {0};
        options_of(cmds.w[i], &opts);
        char line[256];
        snprintf(line, sizeof line, "sembed %s -", cmds.w[i]);
        complete(line, &got);
        for (size_t k = 0; k < opts.n; k++)
            cr_expect(words_has(&got, opts.w[k]), "sembed %s -<TAB>: %s not offered", cmds.w[i], opts.w[k]);
        cr_expect_eq(got.n, opts.n, "sembed %s -<TAB>: expected %zu options, got %zu", cmds.w[i], opts.n, got.n);
        words_free(&opts);
        words_free(&got);
    }
    struct words narrow = {0};
    complete("sembed embed --mo", &narrow);
    cr_expect(narrow.n == 1 && !strcmp(narrow.w[0], "--model"), "sembed embed --mo<TAB>: expected --model only, got %zu",
              narrow.n);
    words_free(&narrow);
    words_free(&first);
    words_free(&cmds);
}

/* ------------------------------------------------------------------ data files */

Test(repo, data_files_found_by_one_rule_in_every_language) {
    char *dir = tu_mkdtemp();
    cr_assert(dir);
    char *sub = tu_path(dir, "vocab"), *sub2 = tu_path(dir, "vocab/bert-base-uncased");
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(mkdir(sub2, 0755), 0);
    char *over = tu_path(sub2, "vocab.txt"), *only = tu_path(dir, "only-here.txt");
    cr_assert_eq(tu_write_file(over, "x\n", 2), 0);
    cr_assert_eq(tu_write_file(only, "y\n", 2), 0);
    char *vendored = tu_path(tu_source_dir(), "data/vocab/bert-base-uncased/vocab.txt");
    char *vendored_sts = tu_path(tu_source_dir(), "data/sts/STSBenchmark/sts-dev.csv");
    const char *old = getenv("SEMBED_DATA_DIR");
    char *saved = old ? strdup(old) : NULL;

    struct {
        const char *env;  // SEMBED_DATA_DIR, NULL: unset
        const char *rel;
        const char *want; // NULL: not found
    } cases[] = {
        {NULL, "vocab/bert-base-uncased/vocab.txt", vendored},
        {NULL, "sts/STSBenchmark/sts-dev.csv", vendored_sts},
        {dir, "vocab/bert-base-uncased/vocab.txt", over},  // the variable comes first
        {dir, "sts/STSBenchmark/sts-dev.csv", vendored_sts},
        {dir, "only-here.txt", only},
        {NULL, "no/such/file.txt", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env) setenv("SEMBED_DATA_DIR", cases[i].env, 1);
        else unsetenv("SEMBED_DATA_DIR");
        char *c = tu_data_file(cases[i].rel);
        if (cases[i].want) cr_expect(c && !strcmp(c, cases[i].want), "C: %s: expected %s, got %s", cases[i].rel, cases[i].want, c ? c : "(none)");
        else cr_expect_null(c, "C: %s: expected none, got %s", cases[i].rel, c);
        const char *tool[2] = {"bash '%s/tools/datafile.sh' '%s' 2>&1", "/usr/bin/python3 '%s/tools/datafile.py' '%s' 2>&1"};
        for (int t = 0; t < 2; t++) {
            char *cmd = NULL, *out = NULL;
            cr_assert(asprintf(&cmd, tool[t], tu_source_dir(), cases[i].rel) > 0);
            int st = tu_run(cmd, &out);
            if (out && *out && out[strlen(out) - 1] == '\n') out[strlen(out) - 1] = 0;
            if (cases[i].want) {
                // datafile.py normalises "<src>/../shared"; compare the real paths.
                char *a = out ? realpath(out, NULL) : NULL, *b = realpath(cases[i].want, NULL);
                cr_expect(st == 0 && a && b && !strcmp(a, b), "%s: expected %s (exit 0), got '%s' (exit %d)", cmd,
                          cases[i].want, out ? out : "", st);
                free(a);
                free(b);
            } else {
                cr_expect(st == 1 && out && strstr(out, cases[i].rel) && strstr(out, "not found"),
                          "%s: expected exit 1 and a line naming the file, got exit %d: %s", cmd, st, out ? out : "");
            }
            free(out);
            free(cmd);
        }
        free(c);
    }
    if (saved) setenv("SEMBED_DATA_DIR", saved, 1);
    else unsetenv("SEMBED_DATA_DIR");
    free(saved);
    free(vendored);
    free(vendored_sts);
    free(over);
    free(only);
    free(sub);
    free(sub2);
    tu_rmtree(dir);
    free(dir);
}

Test(repo, vendored_data_match_the_hashes_in_data_readme) {
    static const struct {
        const char *rel, *sha256;
    } files[] = {
        {"vocab/bert-base-uncased/vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
        {"sts/STSBenchmark/sts-dev.csv", "fd3e4e429f32e352c7c7c76aea5c3383ee95eb98e482796b34e4e7b88a8392f3"},
    };
    char *readme_path = tu_path(tu_source_dir(), "data/README.md");
    char *readme = tu_read_file(readme_path, NULL);
    cr_assert(readme, "cannot read %s", readme_path);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        cr_expect(strstr(readme, files[i].sha256), "data/README.md does not list %s's sha256 %s", files[i].rel,
                  files[i].sha256);
        char *cmd = NULL, *out = NULL;
        cr_assert(asprintf(&cmd, "sha256sum '%s/data/%s'", tu_source_dir(), files[i].rel) > 0);
        cr_assert_eq(tu_run(cmd, &out), 0, "%s failed", cmd);
        cr_expect(out && !strncmp(out, files[i].sha256, 64), "data/%s: expected sha256 %s, got %.64s", files[i].rel,
                  files[i].sha256, out ? out : "");
        free(out);
        free(cmd);
    }
    free(readme);
    free(readme_path);
}
